"""The `dali` pipeline: NVIDIA DALI decodes and augments image files, on the GPU when there is one.

Reads a folder written by `act convert --format dali`. Per batch, the encoded bytes of the
batch's files (in `Pipeline.epoch_order`, so every index once per epoch, seeded and
resumable) are fed to a DALI graph that decodes once (`mixed` nvJPEG on CUDA, the CPU
decoder without a GPU: `device_id=None`) and builds both views from that decode:
weak = resize (shorter side) + random crop + flip + normalise; strong = its own crop and
flip + `nvidia.dali.auto_aug` RandAugment (n=2, m=9) + normalise. Test: resize + centre crop.
The graph is rebuilt each epoch with a seed of (run seed, epoch), so a resumed run draws the
same augmentations. `shard_id`/`num_shards` split each epoch's order between processes.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from pipelines.base import Batch, Pipeline, epoch_seed

INSTALL = "pip install 'act-noisy[dali]' (NVIDIA DALI for CUDA 13: nvidia-dali-cuda130)"


def import_dali():
    try:
        import nvidia.dali  # noqa: F401
    except ImportError as exc:
        raise ActError(f"pipeline.name=dali needs NVIDIA DALI: {INSTALL}") from exc
    from pipelines import dali_graph

    return dali_graph


class DaliPipeline(Pipeline):
    name = "dali"

    def __init__(self, source: Source, noisy: np.ndarray, shard_id: int = 0, num_shards: int = 1, **kwargs):
        super().__init__(source, noisy, **kwargs)
        self.graph = import_dali()
        if source.is_array:
            raise ActError("pipeline.name=dali reads image files: convert them with `act convert --format dali`")
        self.shard_id, self.num_shards = shard_id, num_shards
        self.device_id = (self.device.index or 0) if self.device.type == "cuda" else None
        self.threads = max(1, self.workers)
        self.labels = torch.as_tensor(self.noisy, device=self.device)
        self.true = torch.as_tensor(source.train.labels, device=self.device)
        self.test_labels = torch.as_tensor(source.test.labels)
        self.scale = [255.0 * m for m in source.mean], [255.0 * s for s in source.std]

    def build(self, train: bool, seed: int, batch_size: int):
        mean, std = self.scale
        pipe = self.graph.image_views(
            train=train, strong=train and self.strong, size=self.source.image_size,
            resize=self.source.resize or self.source.image_size, mean=mean, std=std,
            decoder="mixed" if self.device_id is not None else "cpu",
            batch_size=batch_size, num_threads=self.threads, device_id=self.device_id, seed=seed,
            exec_async=False, exec_pipelined=False)
        pipe.build()
        return pipe

    def read(self, files: list[str], indices: list[int]) -> list[np.ndarray]:
        return [np.fromfile(files[i], dtype=np.uint8) for i in indices]

    def steps_per_epoch(self) -> int:
        return -(-len(self.shard(self.epoch_order(0))) // self.batch_size)

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        return order[self.shard_id::self.num_shards]

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        pipe = self.build(True, epoch_seed(self.seed, epoch) % 2**31, self.batch_size)
        order = self.shard(self.epoch_order(epoch))
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            pipe.feed_input("jpegs", self.read(self.source.train.files, index.tolist()))
            outputs = pipe.run()
            weak = self.to_device(self.graph.to_torch(outputs[0], self.device))
            strong = self.to_device(self.graph.to_torch(outputs[1], self.device)) if self.strong else None
            index = index.to(self.device)
            yield Batch(index=index, weak=weak, strong=strong, label=self.labels[index], true_label=self.true[index])

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        pipe = self.build(False, 0, self.test_batch_size)
        n = len(self.source.test)
        for start in range(0, n, self.test_batch_size):
            indices = list(range(start, min(n, start + self.test_batch_size)))
            pipe.feed_input("jpegs", self.read(self.source.test.files, indices))
            images = self.graph.to_torch(pipe.run()[0], self.device)
            yield self.to_device(images), self.test_labels[start:start + len(indices)].to(self.device)

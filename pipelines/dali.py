"""The `dali` pipeline: NVIDIA DALI decodes and augments image files, on the GPU when there is one.

Reads a folder written by `act convert --format dali`. The encoded bytes of each batch's
files (in `Pipeline.epoch_order`, so every index once per epoch, seeded and resumable) come
from a source callback that DALI's pipelined executor calls ahead of the step, into a graph that decodes once (`mixed` nvJPEG on CUDA, the CPU
decoder without a GPU: `device_id=None`) and builds both views of the Source's ViewSpec
(pipelines/views.py) from that decode: weak = resize (shorter side) + random crop + flip +
normalise; strong = its own crop and flip, handed over as uint8, then the public policy as
the batched ops of pipelines/ops on the training device (seeded by (run seed, epoch)) and
normalised there. `pipeline.views=dali-randaugment` replaces that policy by DALI's own
`auto_aug` RandAugment (n=2, m=9, in the graph): faster, but not the public tables. Test:
resize + centre crop. DALI rounds the resized longer side where torchvision truncates it (at
most one pixel of crop range). The graph is rebuilt each epoch with a seed of (run seed,
epoch), so a resumed run draws the same augmentations. Under DDP each process reads its part of
the epoch (`Pipeline.rank_order`, pipelines/shard.py).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from pipelines.base import Batch, Pipeline
from pipelines.ops.policy import POLICIES
from pipelines.registry import register
from pipelines.views import file_view_spec

INSTALL = "pip install 'act-noisy[dali]' (NVIDIA DALI for CUDA 13: nvidia-dali-cuda130)"


def import_dali():
    try:
        import nvidia.dali  # noqa: F401
    except ImportError as exc:
        raise ActError(f"pipeline.name=dali needs NVIDIA DALI: {INSTALL}") from exc
    from pipelines import dali_graph

    return dali_graph


@register
class DaliPipeline(Pipeline):
    name = "dali"
    variants = {"dali-randaugment": "DALI's own auto_aug RandAugment (n=2, m=9), not the public tables"}

    def __init__(self, source: Source, noisy: np.ndarray, **kwargs):
        super().__init__(source, noisy, **kwargs)
        self.graph = import_dali()
        if source.is_array:
            raise ActError("pipeline.name=dali reads image files: convert them with `act convert --format dali`")
        self.spec = file_view_spec(source, self.name)
        self.policy = POLICIES[self.spec.strong]
        self.device_id = (self.device.index or 0) if self.device.type == "cuda" else None
        self.threads = max(1, self.workers)

    def build(self, train: bool, seed: int, files: list[str], batches: list[list[int]]):
        """A DALI graph over `batches` (lists of sample indices into `files`), fed by a source
        callback so DALI's pipelined executor reads and decodes ahead of the training step."""
        mean, std = self.scale

        def encoded(info) -> list[np.ndarray]:
            if info.iteration >= len(batches):
                raise StopIteration
            return [np.fromfile(files[i], dtype=np.uint8) for i in batches[info.iteration]]

        strong = ("uint8" if self.views == "public" else self.views) if train and self.strong else ""
        pipe = self.graph.image_views(
            source=encoded, train=train, strong=strong, size=self.source.image_size,
            resize=self.source.resize or self.source.image_size, flip=self.spec.flip, mean=mean, std=std,
            decoder="mixed" if self.device_id is not None else "cpu",
            batch_size=max(len(b) for b in batches), num_threads=self.threads, device_id=self.device_id,
            seed=seed, prefetch_queue_depth=2)
        pipe.build()
        return pipe

    def run(self, pipe, count: int) -> Iterator[tuple]:
        """The graph's outputs for each of `count` batches, in order, as torch tensors on the device."""
        for _ in range(count):
            yield tuple(self.to_device(self.graph.to_torch(out, self.device)) for out in pipe.run())

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        order = self.rank_order(epoch)
        on_device = self.device_order(order)  # one copy per epoch, not one per batch
        starts = range(0, len(order), self.batch_size)
        pipe = self.build(True, self.view_seed(epoch) % 2**31, self.source.train.files,
                          [order[start:start + self.batch_size].tolist() for start in starts])
        generator = torch.Generator(device=self.device).manual_seed(self.view_seed(epoch))
        for start, (weak, strong) in zip(starts, self.run(pipe, len(starts))):
            if strong.dtype == torch.uint8:
                strong = self.normalise(self.policy(strong.contiguous(), generator, self.static))
            yield self.labelled(on_device[start:start + self.batch_size], weak, strong)

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, size = len(self.source.test), self.test_batch_size
        batches = [list(range(start, min(n, start + size))) for start in range(0, n, size)]
        pipe = self.build(False, 0, self.source.test.files, batches)
        for indices, (images,) in zip(batches, self.run(pipe, len(batches))):
            yield images, self.test_labels[indices[0]:indices[-1] + 1]

"""The `dali` pipeline: NVIDIA DALI decodes and augments image files, on the GPU when there is one.

Reads a folder written by `act convert --format dali`. The encoded bytes of each batch's
files (in `Pipeline.epoch_order`, so every index once per epoch, seeded and resumable) come
from a source callback that DALI's pipelined executor calls ahead of the step, into a graph that decodes once (`mixed` nvJPEG on CUDA, the CPU
decoder without a GPU: `device_id=None`) and builds both views of the Source's ViewSpec
(pipelines/views.py) from that decode: weak = resize (shorter side) + random crop + flip +
normalise; strong = its own crop and flip, handed over as uint8, then the public policy as
the batched ops of pipelines/ops on the training device (seeded by (run seed, epoch)) and
normalised there (`Pipeline.public_strong_view`). `pipeline.views=dali-randaugment` replaces that policy by DALI's own
`auto_aug` RandAugment (n=2, m=9, in the graph): faster, but not the public tables. Test:
resize + centre crop. DALI rounds the resized longer side where torchvision truncates it (at
most one pixel of crop range). Each graph (train with or without the strong view, test) is
built once: the crop positions and flips are drawn here, seeded by (run seed, epoch), and fed
with the files, so a resumed run draws the same crops (DALI's own RandAugment of the variant
draws its ops itself). The public policy's apply pass is captured as a CUDA graph per full
batch (act/graphs.py `Replayed`), its draws eager and seeded; warm-up epochs, whose loss reads no
strong view, run the graph without it. Outputs are bound to torch's current stream (no host
sync). Under DDP each process reads its part of the epoch (`Pipeline.rank_order`, pipelines/shard.py).
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
        self.pipes: dict[tuple[bool, str], object] = {}  # (train, strong output) -> its graph, built once
        self.passes: dict[tuple[bool, str], tuple] = {}  # what each graph's source feeds in its current pass
        self.open: set[tuple[bool, str]] = set()  # graphs in the middle of a pass

    def build(self, key: tuple[bool, str], files: list[str], batch_size: int):
        """The DALI graph of `key` (train, strong output), built once: a source callback feeds it the
        current pass (`self.passes[key]`: each batch's sample indices, and for training their crop
        draws), so DALI's pipelined executor reads and decodes ahead of the training step."""
        mean, std = self.scale
        train, strong = key

        def feed(info):
            batches, draws = self.passes[key]
            if info.iteration >= len(batches):
                raise StopIteration
            batch = batches[info.iteration]
            encoded = [np.fromfile(files[i], dtype=np.uint8) for i in batch]
            if not train:
                return encoded
            d = draws[info.iteration]
            return (encoded, *(list(d[:, k].astype(np.float32)) for k in (0, 1)), list(d[:, 2].astype(np.int32)),
                    *(list(d[:, k].astype(np.float32)) for k in (3, 4)), list(d[:, 5].astype(np.int32)))

        pipe = self.graph.image_views(
            source=feed, train=train, strong=strong, size=self.source.image_size,
            resize=self.source.resize or self.source.image_size, mean=mean, std=std,
            decoder="mixed" if self.device_id is not None else "cpu", batch_size=batch_size,
            num_threads=self.threads, device_id=self.device_id, seed=self.seed % 2**31, prefetch_queue_depth=2)
        pipe.build()
        return pipe

    def crop_draws(self, epoch: int, n: int) -> np.ndarray:
        """n x 6: each sample's weak crop position (x, y in 0..1 of the room), flip, and the strong
        view's own, seeded by (seed, epoch) (drawn for both views in every epoch, so the weak ones
        do not depend on whether the strong view is built)."""
        draws = np.random.default_rng(self.view_seed(epoch)).random((n, 6))
        for flip in (2, 5):
            draws[:, flip] = (draws[:, flip] < 0.5) & self.spec.flip
        return draws

    def run(self, key: tuple[bool, str], files: list[str], batches: list[list[int]], draws: list | None,
            batch_size: int) -> Iterator[tuple]:
        """The graph's outputs for each batch of a pass, in order, as torch tensors on the device.
        A graph left in the middle of a pass still holds that pass's prefetched batches: it is
        built anew; otherwise it is reset to the start of the next pass."""
        pipe = self.pipes.pop(key, None)
        if key in self.open:
            pipe = None  # it still holds the prefetched batches of the pass left halfway
        self.passes[key] = (batches, draws)
        if pipe is None:
            pipe = self.build(key, files, batch_size)
        else:
            pipe.reset()
        self.pipes[key] = pipe
        self.open.add(key)
        # Outputs bound to torch's current stream: without a stream DALI synchronises them with the host.
        stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
        for _ in batches:
            yield tuple(self.to_device(self.graph.to_torch(out, self.device)) for out in pipe.run(stream))
        try:
            pipe.run(stream)
        except StopIteration:
            self.open.discard(key)  # at the end of the pass: the next one resets it

    def train_batches(self, epoch: int, strong: bool | None = None) -> Iterator[Batch]:
        strong = self.wants_strong(strong)
        order = self.rank_order(epoch)
        on_device = self.device_order(order)  # one copy per epoch, not one per batch
        starts = range(0, len(order), self.batch_size)
        draws = self.crop_draws(epoch, len(order))
        kind = ("uint8" if self.views == "public" else self.views) if strong else ""
        generator = torch.Generator(device=self.device).manual_seed(self.view_seed(epoch))
        outputs = self.run((True, kind), self.source.train.files,
                           [order[start:start + self.batch_size].tolist() for start in starts],
                           [draws[start:start + self.batch_size] for start in starts], self.batch_size)
        # The outputs first: zip stops at its first exhausted argument, and `run` must reach its end
        # (the graph then resets for the next pass instead of being built anew).
        for (weak, strong_view), start in zip(outputs, starts):
            if not strong:
                strong_view = None
            elif strong_view.dtype == torch.uint8:
                strong_view = self.public_strong_view(strong_view.contiguous(), generator)
            yield self.labelled(on_device[start:start + self.batch_size], weak, strong_view)

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, size = len(self.source.test), self.test_batch_size
        batches = [list(range(start, min(n, start + size))) for start in range(0, n, size)]
        for (images,), indices in zip(self.run((False, ""), self.source.test.files, batches, None, size), batches):
            yield images, self.test_labels[indices[0]:indices[-1] + 1]

"""The `tensor` pipeline: the whole uint8 data set lives on the training device and both views
of every batch are built there by batched tensor ops (pipelines/ops), airbench-style.

Per epoch: the order is `Pipeline.epoch_order` (seeded by (seed, epoch), the same order as the
reference pipeline), and one device generator seeded by (seed, epoch) drives every random
draw of the epoch's augmentations, so a resumed run rebuilds the same batches. Each image
draws its own crop, flip, sub-policy, coins and signs inside one batched computation; the
views are those of the data set's ViewSpec (pipelines/views.py), the strong one with its own
crop and flip, as the public code draws them.

`Pipeline.static` (default: on any device but the CPU, pipelines/ops/masked.use_static) builds the views
with static shapes and no host sync (what a GPU needs, and what tests check on the CPU);
otherwise the flip and the strong policy compute only the samples they pick.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from pipelines.base import Batch, Pipeline
from pipelines.ops.crop import crop_at
from pipelines.ops.flip import flip_where
from pipelines.ops.policy import POLICIES
from pipelines.registry import register
from pipelines.views import view_spec


def to_device_uint8(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x C uint8 (numpy) -> N x C x H x W uint8 on the device."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).contiguous()


@register
class TensorPipeline(Pipeline):
    name = "tensor"

    def __init__(self, source: Source, noisy: np.ndarray, **kwargs):
        super().__init__(source, noisy, **kwargs)
        if not source.is_array:
            raise ActError("pipeline.name=tensor needs an array data set (CIFAR, arrays, digits); "
                           "use pipeline.name=reference (or auto) for image folders")
        self.spec = view_spec(source.augment, f"data set {source.name}")
        side = min(source.train.images.shape[1:3])
        if self.spec.resize and (source.resize or source.image_size) != side:
            raise ActError(f"pipeline.name=tensor uses arrays at their own size ({side} px); data set {source.name} "
                           f"asks for a resize to {source.resize or source.image_size}: use pipeline.name=reference")
        self.policy = POLICIES[self.spec.strong]
        self.train_images = to_device_uint8(source.train.images, self.device)
        self.test_images = to_device_uint8(source.test.images, self.device)

    def draw_weak(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor | None, ...]:
        """Each sample's crop offsets (dy, dx into the padded image) and flip; None where the spec has none."""
        offsets, device = 2 * self.spec.padding + 1, self.device
        dy, dx = ((torch.randint(0, offsets, (n,), device=device, generator=generator),
                   torch.randint(0, offsets, (n,), device=device, generator=generator))
                  if self.spec.padding else (None, None))
        flip = torch.rand(n, device=device, generator=generator) < 0.5 if self.spec.flip else None
        return dy, dx, flip

    def apply_weak(self, images: torch.Tensor, dy: torch.Tensor | None, dx: torch.Tensor | None,
                   flip: torch.Tensor | None) -> torch.Tensor:
        """RandomCrop(size, padding) then the flip, at the drawn offsets (uint8)."""
        if dy is not None:
            images = crop_at(images, self.spec.padding, dy, dx)
        if flip is not None:
            images = flip_where(images, flip, static=self.static)
        return images

    def weak_view(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply_weak(images, *self.draw_weak(len(images), generator))

    def chunk_batches(self) -> int:
        """Batches augmented together: a few for small images, so the per-op overhead of the
        batched policies is paid once per ~4 M values; one for large images."""
        values = self.batch_size * int(np.prod(self.train_images.shape[1:]))
        return max(1, min(8, 4_000_000 // values))

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        order = self.device_order(self.rank_order(epoch))
        generator = torch.Generator(device=self.device).manual_seed(self.view_seed(epoch))
        chunk = self.batch_size * self.chunk_batches()
        for chunk_start in range(0, len(order), chunk):
            index = order[chunk_start:chunk_start + chunk]
            images = self.train_images[index]
            weak = self.normalise(self.weak_view(images, generator))
            strong = (self.normalise(self.policy(self.weak_view(images, generator), generator, self.static))
                      if self.strong else None)
            for start in range(0, len(index), self.batch_size):
                part = slice(start, start + self.batch_size)
                yield self.labelled(index[part], weak[part], None if strong is None else strong[part])

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.test_images), self.test_batch_size):
            end = start + self.test_batch_size
            yield self.normalise(self.test_images[start:end]), self.test_labels[start:end]

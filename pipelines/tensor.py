"""The `tensor` pipeline: the whole uint8 data set lives on the training device and both views
of every batch are built there by batched tensor ops (pipelines/ops), airbench-style.

Per epoch: the order is `Pipeline.epoch_order` (seeded by (seed, epoch), the same order as the
reference pipeline), and one device generator seeded by (seed, epoch) drives every random
draw of the epoch's augmentations, so a resumed run rebuilds the same batches. Each image
draws its own crop, flip, sub-policy, coins and signs inside one batched computation; the
views are those of the data set's ViewSpec (pipelines/views.py), the strong one with its own
crop and flip, as the public code draws them.

`Pipeline.static` (default: on any device but the CPU, pipelines/ops/masked.py `use_static`) builds the views
with static shapes and no host sync (what a GPU needs, and what tests check on the CPU);
otherwise the flip and the strong policy compute only the samples they pick.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from act.step.graphs import passes_tried
from pipelines.base import Batch, Pipeline
from pipelines.ops.weak import crop_at, flip_where
from pipelines.ops.policy import DRAWS, POLICIES
from pipelines.ops.slot import apply_draws
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
        # The apply pass of a full chunk, with and without the strong view, each one CUDA graph
        # replayed per chunk on CUDA (act/step/graphs.py); the draws stay eager and seeded.
        self.chunk_views = {want: self.replayed(self.apply_views) for want in (False, True)}

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

    def draw_strong(self, n: int, generator: torch.Generator) -> tuple:
        """The strong view's own crop and flip, then its policy's draws (pipelines/ops/policy.py)."""
        like = self.train_images[:n]  # the policy draws read only the batch's shape and device
        return *self.draw_weak(n, generator), DRAWS[self.policy](like, generator)

    def apply_views(self, index: torch.Tensor, weak: tuple, strong: tuple | None) -> tuple:
        """The normalised views of samples `index` at drawn parameters: one static-shape function
        of tensors on the static path (captured per full chunk, `chunk_views`)."""
        images = self.train_images[index]
        weak_view = self.normalise(self.apply_weak(images, *weak))
        if strong is None:
            return weak_view, None
        *crop, draws = strong
        return weak_view, self.normalise(apply_draws(self.apply_weak(images, *crop), draws, self.static))

    def chunk_batches(self) -> int:
        """Batches augmented together: a few for small images, so the per-op overhead of the
        batched policies is paid once per ~4 M values; one for large images."""
        values = self.batch_size * int(np.prod(self.train_images.shape[1:]))
        return max(1, min(8, 4_000_000 // values))

    def train_batches(self, epoch: int, strong: bool | None = None) -> Iterator[Batch]:
        """`strong=False` (an epoch whose loss reads no strong view) builds none; its random draws
        are still made, so the weak views and every later epoch are those of any other run."""
        strong = self.wants_strong(strong)
        order = self.device_order(self.rank_order(epoch))
        generator = torch.Generator(device=self.device).manual_seed(self.view_seed(epoch))
        chunk = self.batch_size * self.chunk_batches()
        for chunk_start in range(0, len(order), chunk):
            index = order[chunk_start:chunk_start + chunk]
            weak_draws = self.draw_weak(len(index), generator)
            strong_draws = self.draw_strong(len(index), generator) if self.strong else None
            apply = self.chunk_views[strong] if len(index) == chunk else self.apply_views
            weak, strong_view = apply(index, weak_draws, strong_draws if strong else None)
            for start in range(0, len(index), self.batch_size):
                part = slice(start, start + self.batch_size)
                yield self.labelled(index[part], weak[part], None if strong_view is None else strong_view[part])

    def view_graphs(self) -> dict[str, str]:
        """The captured apply passes that ran: `views.weak` (epochs without the strong view), `views.both`."""
        return passes_tried({f"views.{'both' if want else 'weak'}": r for want, r in self.chunk_views.items()})

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.test_images), self.test_batch_size):
            end = start + self.test_batch_size
            yield self.normalise(self.test_images[start:end]), self.test_labels[start:end]

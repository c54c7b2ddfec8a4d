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

The runs of a pack (act/pack/run.py) read the same data: `PackViews` makes their batches
together, each run's draws its own, one apply pass over the K runs' chunks.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from act.graphs import passes_tried
from pipelines.base import Batch, Pipeline
from pipelines.ops.weak import crop_at, flip_where
from pipelines.ops.policy import DRAWS, POLICIES
from pipelines.ops.slot import Draws, apply_draws
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
        # replayed per chunk on CUDA (act/graphs.py); the draws stay eager and seeded.
        self.chunk_views = {want: self.replayed(self.apply_views) for want in (False, True)}
        self.pack: PackViews | None = None  # the views of the pack this run trains in (act/pack/run.py)

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
        for [batch] in chunked_batches([self], self.chunk_views, epoch, strong):
            yield batch

    def draw_chunk(self, n: int, generator: torch.Generator) -> tuple[tuple, tuple | None]:
        """A chunk's draws, in the order the generator makes them: the weak view's, then (when the
        run has a strong view, even in an epoch that builds none) the strong view's."""
        return self.draw_weak(n, generator), self.draw_strong(n, generator) if self.strong else None

    def view_graphs(self) -> dict[str, str]:
        """The captured apply passes that ran: `views.weak` (epochs without the strong view), `views.both`;
        those of the pack it trained in, if any (`PackViews`): `views.pack.weak`, `views.pack.both`."""
        passes = {f"views.{'both' if want else 'weak'}": r for want, r in self.chunk_views.items()}
        if self.pack is not None:
            passes |= {f"views.pack.{'both' if want else 'weak'}": r for want, r in self.pack.chunk_views.items()}
        return passes_tried(passes)

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.test_images), self.test_batch_size):
            end = start + self.test_batch_size
            yield self.normalise(self.test_images[start:end]), self.test_labels[start:end]


class PackViews:
    """The views of K tensor pipelines of runs that read the same data (a pack's runs,
    act/pack/run.py), made together: each run draws its chunk as it does alone (its own order,
    generator and seed, so every number it sees is the one it sees alone), and one apply pass
    builds the K runs' chunks as one chunk of K x chunk images (on CUDA one graph replay per
    chunk of the pack, not K), cut back into each run's batches. The pass reads the first
    pipeline's images: the runs' data must be the same (the pack checks their fingerprints)."""

    def __init__(self, pipelines: list[TensorPipeline]):
        first = pipelines[0]
        if any(shared(p) != shared(first) for p in pipelines[1:]):
            raise ActError("the tensor pipelines of a pack must share their data, batch size, views and device")
        self.pipelines = list(pipelines)
        self.chunk_views = {want: first.replayed(first.apply_views) for want in (False, True)}
        for p in pipelines:
            p.pack = self

    def train_batches(self, epoch: int, strong: bool | None = None) -> Iterator[list[Batch]]:
        """The K runs' batches of `epoch`, step by step: [run 0's batch, ..., run K-1's], each the
        batch its pipeline's `train_batches` yields alone."""
        return chunked_batches(self.pipelines, self.chunk_views, epoch, strong)


def shared(p: TensorPipeline) -> tuple:
    """What the pipelines of one pack must have in common: one apply pass builds all their views."""
    return (p.batch_size, p.chunk_batches(), p.strong, p.static, p.device, p.spec, p.policy, p.train_images.shape,
            p.rank, p.ranks)


def pack_views(pipelines: list[TensorPipeline]) -> PackViews:
    """The PackViews of these pipelines: made at the first call, the same one after (its captured passes kept)."""
    pack = pipelines[0].pack
    if pack is None or [id(p) for p in pack.pipelines] != [id(p) for p in pipelines]:
        pack = PackViews(pipelines)
    return pack


def chunked_batches(pipelines: list[TensorPipeline], chunk_views: dict, epoch: int,
                    strong: bool | None) -> Iterator[list[Batch]]:
    """The batches of `epoch` of one run (K = 1) or of K runs that read the same data, step by
    step. Per chunk each run draws its views from its own generator, then one apply pass
    (`chunk_views[strong]` for a full chunk, captured; the first pipeline's `apply_views` for the
    last, smaller one) builds the K chunks concatenated, cut back into each run's batches."""
    first = pipelines[0]
    strong = first.wants_strong(strong)
    orders = [p.device_order(p.rank_order(epoch)) for p in pipelines]
    generators = [torch.Generator(device=p.device).manual_seed(p.view_seed(epoch)) for p in pipelines]
    chunk = first.batch_size * first.chunk_batches()
    for chunk_start in range(0, len(orders[0]), chunk):
        indices = [order[chunk_start:chunk_start + chunk] for order in orders]
        draws = [p.draw_chunk(len(index), g) for p, index, g in zip(pipelines, indices, generators)]
        weak_draws, strong_draws = joined([d[0] for d in draws]), joined([d[1] for d in draws])
        n = len(indices[0])
        apply = chunk_views[strong] if n == chunk else first.apply_views
        weak, strong_view = apply(joined(indices), weak_draws, strong_draws if strong else None)
        for start in range(0, n, first.batch_size):
            end = min(start + first.batch_size, n)
            yield [p.labelled(index[start:end], weak[k * n + start:k * n + end],
                              None if strong_view is None else strong_view[k * n + start:k * n + end])
                   for k, (p, index) in enumerate(zip(pipelines, indices))]


def joined(parts: list):
    """K runs' tensors (or draws: tuples of tensors, None, slot.Draws) of one chunk as those of the K
    chunks concatenated: along the sample dimension, dim 0 of an index or a crop or flip draw,
    dim 1 of a policy's Draws (slot x sample). One run's are returned as they are."""
    if len(parts) == 1 or parts[0] is None:
        return parts[0]
    if isinstance(parts[0], Draws):
        return Draws(*(None if fields[0] is None else torch.cat(fields, dim=1) for fields in zip(*parts)))
    if isinstance(parts[0], tuple):
        return tuple(joined(list(fields)) for fields in zip(*parts))
    return torch.cat(parts)

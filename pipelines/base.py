"""What every pipeline yields, and the interface the trainer uses (ARCHITECTURE.md "data contract")."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from act.datasets.base import Source
from act.graphs import Replayed, passes_tried
from pipelines.ops.masked import use_static
from pipelines.ops.policy import DRAWS
from pipelines.ops.slot import Draws, apply_draws
from pipelines.shard import shard_order, shard_steps
from pipelines.registry import check_views


@dataclass
class Batch:
    """One training batch on the training device.

    `weak` and `strong` are float32, normalised, N x C x H x W (channels_last on CUDA);
    `strong` is None when the run needs no strong view. `label` is the noisy label the
    method trains on, `true_label` the data set's own (for selection precision only).
    """

    index: torch.Tensor
    weak: torch.Tensor
    strong: torch.Tensor | None
    label: torch.Tensor
    true_label: torch.Tensor


class Pipeline(ABC):
    """Source -> Batches. An epoch's order and augmentation are a function of (seed, epoch),
    so a resumed run sees the same batches; every index appears exactly once per epoch and
    the last partial batch is kept."""

    name = "base"  # pipeline.name (pipelines/registry.py)
    variants: dict[str, str] = {}  # pipeline.views variants offered beside the public views -> what each is

    def __init__(self, source: Source, noisy: np.ndarray, *, batch_size: int, device: torch.device, seed: int,
                 workers: int = 0, path: str | None = None, test_batch_size: int = 512, strong: bool = True,
                 static: bool | None = None, views: str = "public", shard: tuple[int, int] = (0, 1),
                 graphs: bool = True, graphs_strict: bool = False):
        check_views(views, type(self))
        # The view passes built on the device replayed as CUDA graphs (`replayed`; the Runtime's
        # view_graphs, off under run.cuda_graph=false); strict: a failed capture stops the run.
        self.graphs, self.graphs_strict = graphs, graphs_strict
        self.strong_graph: Replayed | Callable | None = None  # `public_strong_view`'s pass, made at first use
        self.views = views  # pipeline.views: `public` or a named faster variant (pipelines/views.py)
        self.source = source
        self.noisy = np.asarray(noisy, dtype=np.int64)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.seed = seed
        self.workers = workers
        self.path = path
        self.test_batch_size = test_batch_size
        self.strong = strong
        self.rank, self.ranks = shard  # this process and the processes of a DDP run (pipelines/shard.py)
        # Views built on the device (tensor, ffcv strong view) with static shapes and no host sync:
        # what a GPU needs; the CPU default computes only the picked samples (pipelines/ops/masked.py).
        self.static = use_static(static, self.device)
        # Noisy and true training labels on the device, for `labelled`; the test labels too.
        self.labels = torch.as_tensor(self.noisy, device=self.device)
        self.true = torch.as_tensor(source.train.labels, device=self.device)
        self.test_labels = torch.as_tensor(source.test.labels, device=self.device)
        # Truncated files trained on as far as PIL recovers them: those a conversion listed, and
        # those a pipeline decoding the originals finds (reference); the run's summary lists them.
        self.recovered: set[str] = set(source.recovered)
        # Normalisation constants on the device once (a list copied to a GPU per batch would block).
        self.scale = [255.0 * m for m in source.mean], [255.0 * s for s in source.std]
        self.mean, self.std = (torch.tensor(v, device=self.device).view(1, -1, 1, 1) for v in self.scale)

    @abstractmethod
    def train_batches(self, epoch: int, strong: bool | None = None) -> Iterator[Batch]:
        """The batches of training epoch `epoch`; `strong=False` leaves the strong view out of an
        epoch whose loss does not read it (`wants_strong`)."""

    def wants_strong(self, strong: bool | None) -> bool:
        """Whether this epoch builds the strong view: never when the run has none (`self.strong`),
        else as the epoch asks (None: yes)."""
        return self.strong and (strong is None or strong)

    def public_strong_view(self, crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The public policy (`self.policy`, pipelines/ops/policy.py) on a batch of uint8 strong crops
        made by a decoder (DALI, FFCV), normalised: the draws eager and seeded by `generator`, the
        apply pass replayed as one CUDA graph per full batch (`replayed`)."""
        draws = DRAWS[self.policy](crops, generator)
        if len(crops) != self.batch_size:
            return self.strong_pass(crops, draws)
        if self.strong_graph is None:
            self.strong_graph = self.replayed(self.strong_pass)
        return self.strong_graph(crops, draws)

    def strong_pass(self, crops: torch.Tensor, draws: Draws) -> torch.Tensor:
        return self.normalise(apply_draws(crops, draws, self.static))

    def replayed(self, apply: Callable) -> Replayed | Callable:
        """`apply` (a static-shape view pass) captured as a CUDA graph per full batch or chunk
        (act/graphs.py `Replayed`: an eager twin off CUDA, so the CPU tests walk the same path), or
        `apply` itself on the picked-samples path and without `graphs` (run.cuda_graph=false)."""
        if not self.static or not self.graphs:
            return apply
        return Replayed(apply, self.device, strict=self.graphs_strict)

    def view_graphs(self) -> dict[str, str]:
        """How each view pass captured as a CUDA graph ran (act/graphs.py `Replayed.mode`), by name."""
        return passes_tried({"views.strong": self.strong_graph})

    @abstractmethod
    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) of the test split, unaugmented, on the device."""

    def steps_per_epoch(self) -> int:
        return shard_steps(len(self.source.train), self.batch_size, self.ranks)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The permutation of epoch `epoch`: seeded by (seed, epoch) alone."""
        return epoch_order(len(self.source.train), self.seed, epoch)

    def rank_order(self, epoch: int) -> torch.Tensor:
        """This rank's part of the epoch's order (all of it in one process), cut in batch_size steps."""
        return shard_order(self.epoch_order(epoch), self.batch_size, self.rank, self.ranks)

    def view_seed(self, epoch: int) -> int:
        """The seed of an epoch's batched augmentation draws; each rank its own stream, or ranks
        would draw the same crops and policies for their i-th samples."""
        return (epoch_seed(self.seed, epoch) + self.rank) % 2**63

    def device_order(self, order: torch.Tensor) -> torch.Tensor:
        """An epoch's order (CPU) on the device, copied once per epoch without blocking the host."""
        if self.device.type == "cuda":
            order = order.pin_memory()
        return order.to(self.device, non_blocking=True)

    def labelled(self, index: torch.Tensor, weak: torch.Tensor, strong: torch.Tensor | None) -> Batch:
        """The Batch of samples `index` (on the device): labels looked up there, no host copy."""
        return Batch(index=index, weak=weak, strong=strong, label=self.labels[index], true_label=self.true[index])

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x H x W (any device) -> float32 (x - 255 mean) / (255 std) on the device, a new
        tensor, channels_last on CUDA; the constants are those the DALI graph normalises with."""
        out = images.to(self.device, non_blocking=True).float().sub_(self.mean).div_(self.std)
        return out.contiguous(memory_format=torch.channels_last if self.device.type == "cuda" else torch.contiguous_format)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A loader's tensor on the device without blocking the host: on CUDA the loaders hand over
        pinned memory (DataLoader pin_memory, FFCV's ToDevice), which a non-blocking copy needs;
        images (4-d) channels_last there."""
        tensor = tensor.to(self.device, non_blocking=True)
        if self.device.type == "cuda" and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor


def epoch_order(size: int, seed: int, epoch: int) -> torch.Tensor:
    """A permutation of range(size) drawn from a CPU generator seeded by (seed, epoch): the same on every device."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(size, generator=generator)


def epoch_seed(seed: int, epoch: int, index: int = -1) -> int:
    """One 63-bit seed per (run seed, epoch[, sample]) so no two draws share a stream."""
    return int(np.random.SeedSequence([seed, epoch, index + 1]).generate_state(2, np.uint64)[0] >> np.uint64(1))

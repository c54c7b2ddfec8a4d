"""The training step of each phase and the evaluation pass.

A step runs both networks, the selection (robust phase), both losses, one backward over
L0 + L1 (the two networks' parameters are disjoint, so this equals two backwards) and both
optimiser updates. The maths lives in `method.py`; this module arranges it for speed:

- `*_losses` functions compute a phase's loss, update the memory bank in place and add the
  epoch statistics into one device vector, with no host synchronisation and static shapes,
  so `torch.compile` can capture each as one graph (`build_steps(..., compile=True)`).
- the epoch enters as a 0-d tensor and learning rates live in the optimisers, so a new
  epoch never triggers a recompile; the last, smaller batch of an epoch takes the eager
  path instead of compiling a second graph.
- backward and the optimiser updates run after the captured region: SGD is `fused` on CUDA
  and `foreach` on the CPU (act/train.py builds the optimisers).
Statistics are read once per epoch by `EpochStats.read`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from act import method as M

# The epoch statistics, in the order of EpochStats.totals.
STAT_NAMES = ("samples", "selected", "selected_clean", "clean", "mining_steps", "steps",
              "loss0", "loss1", "correct0", "correct1")


@dataclass
class StepContext:
    """What a step needs besides the batch: both nets, both optimisers, the bank and settings."""

    rtm: nn.Module
    ntm: nn.Module
    opt0: torch.optim.Optimizer
    opt1: torch.optim.Optimizer
    bank: M.Bank
    tau: float = 0.025
    selection: str = "cifar"
    mine: bool = True
    reweight: bool = True
    consistency: bool = True
    label_smoothing: float = 0.0
    fuse_views: bool = False  # one RTM forward over [weak; strong]: shared batch-norm statistics
    amp_dtype: torch.dtype | None = None  # None: fp32
    scaler: torch.amp.GradScaler | None = None  # fp16 only
    epoch: torch.Tensor = field(default=None)  # 0-d float on the device; set by `set_epoch`

    def __post_init__(self) -> None:
        if self.epoch is None:
            self.epoch = torch.zeros((), device=self.bank.count.device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch.fill_(epoch)

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.bank.count.device.type, dtype=self.amp_dtype)


class EpochStats:
    """Device-side sums over an epoch in one float64 vector; `read` syncs once."""

    def __init__(self, device: torch.device):
        self.totals = torch.zeros(len(STAT_NAMES), dtype=torch.float64, device=device)

    def read(self) -> dict[str, float]:
        return dict(zip(STAT_NAMES, self.totals.tolist()))


def add_stats(totals: torch.Tensor, *, sel, y, true, mining, loss0, loss1, pred0, pred1) -> None:
    """Add one batch's statistics to `totals` (one stacked add: no host sync)."""
    clean = y == true
    row = torch.stack([
        y.new_full((), len(y)), sel.sum(), (sel & clean).sum(), clean.sum(),
        mining.to(torch.float64), torch.ones((), device=y.device), loss0.detach(), loss1.detach(),
        (pred0 == y).sum(), (pred1 == y).sum()]).to(torch.float64)
    totals.add_(row)


def every_sample_losses(ctx: StepContext, batch, totals: torch.Tensor, warmup: bool) -> torch.Tensor:
    """Both nets on CE over every sample (weak view). In warm-up the RTM adds the confidence
    penalty and every sample's count grows by one; without it this is the paper's "Standard"."""
    y = batch.label
    with ctx.autocast():
        logits0 = ctx.rtm(batch.weak)
        logits1 = ctx.ntm(batch.weak)
    loss0 = M.cross_entropy(logits0, y, ctx.label_smoothing)
    if warmup:
        loss0 = loss0 + M.conf_penalty(logits0.float())
        ctx.bank.count.index_add_(0, batch.index, torch.ones_like(batch.index))
    loss1 = M.cross_entropy(logits1, y, ctx.label_smoothing)
    add_stats(totals, sel=torch.ones_like(y, dtype=torch.bool), y=y, true=batch.true_label,
              mining=torch.zeros((), device=y.device), loss0=loss0, loss1=loss1,
              pred0=logits0.argmax(1), pred1=logits1.argmax(1))
    return loss0 + loss1


def warmup_losses(ctx: StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    return every_sample_losses(ctx, batch, totals, warmup=True)


def standard_losses(ctx: StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    return every_sample_losses(ctx, batch, totals, warmup=False)


def robust_losses(ctx: StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    """The robust phase (ACT_SPEC.md steps 1-8) on one batch; returns L0 + L1."""
    idx, y = batch.index, batch.label
    fused = ctx.consistency and ctx.fuse_views
    with ctx.autocast():
        if fused:
            logits0, logits_s = ctx.rtm(torch.cat([batch.weak, batch.strong])).chunk(2)
        else:
            logits0 = ctx.rtm(batch.weak)
        logits1 = ctx.ntm(batch.weak)
    p0 = logits0.float().softmax(dim=1)
    pred0, pred1 = logits0.argmax(dim=1), logits1.argmax(dim=1)
    mining = M.memorisation_check(pred0, pred1, y, ctx.tau)
    sel = M.select(pred0, pred1, y, mining, ctx.selection, ctx.mine)
    M.count_selected(ctx.bank.count, idx, sel)
    ce0 = M.cross_entropy(logits0, y, ctx.label_smoothing, reduction="none")
    l_sel = M.selected_loss(ce0, sel, ctx.bank.count[idx], ctx.epoch, ctx.reweight)
    l_cr = None
    if ctx.consistency:
        ema_new, pseudo = M.consistency_targets(ctx.bank.ema[idx], p0.detach(), y, sel)
        if not fused:  # the public code: a second RTM forward, batch-norm statistics per view
            with ctx.autocast():
                logits_s = ctx.rtm(batch.strong)
        l_cr = M.cross_entropy(logits_s, pseudo, ctx.label_smoothing)
        ctx.bank.ema[idx] = ema_new
    loss0 = M.rtm_loss(l_sel, l_cr)
    loss1 = M.cross_entropy(logits1, y, ctx.label_smoothing)
    add_stats(totals, sel=sel, y=y, true=batch.true_label, mining=mining & ctx.mine, loss0=loss0, loss1=loss1,
              pred0=pred0, pred1=pred1)
    return loss0 + loss1


LOSSES: dict[str, Callable] = {"warmup": warmup_losses, "robust": robust_losses, "standard": standard_losses}


def backward_and_step(ctx: StepContext, loss: torch.Tensor) -> None:
    """One backward over L0 + L1 and both optimiser updates (through the scaler for fp16)."""
    ctx.opt0.zero_grad(set_to_none=True)
    ctx.opt1.zero_grad(set_to_none=True)
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        ctx.scaler.step(ctx.opt0)
        ctx.scaler.step(ctx.opt1)
        ctx.scaler.update()
    else:
        loss.backward()
        ctx.opt0.step()
        ctx.opt1.step()


def run_step(ctx: StepContext, losses: Callable, batch, stats: EpochStats) -> None:
    backward_and_step(ctx, losses(ctx, batch, stats.totals))


def warmup_step(ctx: StepContext, batch, epoch: int, stats: EpochStats) -> None:
    ctx.set_epoch(epoch)
    run_step(ctx, warmup_losses, batch, stats)


def standard_step(ctx: StepContext, batch, epoch: int, stats: EpochStats) -> None:
    ctx.set_epoch(epoch)
    run_step(ctx, standard_losses, batch, stats)


def robust_step(ctx: StepContext, batch, epoch: int, stats: EpochStats) -> None:
    ctx.set_epoch(epoch)
    run_step(ctx, robust_losses, batch, stats)


class PhaseStep:
    """The step of one phase: the losses compiled once for the full batch size (when asked),
    eager for any other size (the epoch's last batch), then backward and both updates."""

    def __init__(self, ctx: StepContext, phase: str, batch_size: int, compile: bool, mode: str = "default"):
        self.ctx, self.batch_size = ctx, batch_size
        self.eager = LOSSES[phase]
        self.compiled = torch.compile(self.eager, mode=mode, dynamic=False) if compile else self.eager

    def __call__(self, batch, stats: EpochStats) -> None:
        # A Python branch on a shape, not on a tensor value: no host sync.
        losses = self.compiled if len(batch.index) == self.batch_size else self.eager
        run_step(self.ctx, losses, batch, stats)


def build_steps(ctx: StepContext, batch_size: int, compile: bool = False, mode: str = "default") -> dict[str, PhaseStep]:
    """One step per phase; compile happens lazily at each phase's first full batch."""
    return {phase: PhaseStep(ctx, phase, batch_size, compile, mode) for phase in LOSSES}


@torch.no_grad()
def evaluate(nets: list[nn.Module], batches, amp_dtype: torch.dtype | None = None) -> list[float]:
    """Test accuracy (%) of each net; counts stay on the device until the end."""
    for net in nets:
        net.eval()
    correct = None
    total = 0
    for images, labels in batches:
        ctx = torch.autocast(device_type=images.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with ctx:
            hits = torch.stack([(net(images).argmax(1) == labels).sum() for net in nets])
        correct = hits if correct is None else correct + hits
        total += len(labels)
    for net in nets:
        net.train()
    if correct is None or total == 0:
        return [float("nan")] * len(nets)
    return [100.0 * c / total for c in correct.tolist()]

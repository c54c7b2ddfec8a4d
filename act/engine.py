"""The training step of each phase and the evaluation pass.

One step runs both networks, the selection (robust phase), both losses, one backward over
L0 + L1 (the two networks' parameters are disjoint, so this equals two backwards) and both
optimiser updates. The memory bank and the epoch statistics stay on the training device;
statistics are read once per epoch by `EpochStats.read`. The maths lives in `method.py`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields

import torch
import torch.nn as nn

from act import method as M


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
    amp_dtype: torch.dtype | None = None  # None: fp32
    scaler: torch.amp.GradScaler | None = None  # fp16 only

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        device_type = next(self.rtm.parameters()).device.type
        return torch.autocast(device_type=device_type, dtype=self.amp_dtype)


@dataclass
class EpochStats:
    """Device-side sums over an epoch; `read` syncs once and returns plain numbers."""

    device: torch.device
    samples: torch.Tensor = field(init=False)
    selected: torch.Tensor = field(init=False)
    selected_clean: torch.Tensor = field(init=False)
    clean: torch.Tensor = field(init=False)
    mining_steps: torch.Tensor = field(init=False)
    steps: torch.Tensor = field(init=False)
    loss0: torch.Tensor = field(init=False)
    loss1: torch.Tensor = field(init=False)
    correct0: torch.Tensor = field(init=False)
    correct1: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "device":
                dtype = torch.float64 if f.name.startswith("loss") else torch.int64
                setattr(self, f.name, torch.zeros((), dtype=dtype, device=self.device))

    def add(self, *, sel: torch.Tensor, y: torch.Tensor, true: torch.Tensor, mining: torch.Tensor,
            loss0: torch.Tensor, loss1: torch.Tensor, pred0: torch.Tensor, pred1: torch.Tensor) -> None:
        clean = y == true
        self.samples += len(y)
        self.selected += sel.sum()
        self.selected_clean += (sel & clean).sum()
        self.clean += clean.sum()
        self.mining_steps += mining.to(torch.int64)
        self.steps += 1
        self.loss0 += loss0.detach().double()
        self.loss1 += loss1.detach().double()
        self.correct0 += (pred0 == y).sum()
        self.correct1 += (pred1 == y).sum()

    def read(self) -> dict[str, float]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "device"}
        host = torch.stack([v.double() for v in values.values()]).tolist()
        return dict(zip(values.keys(), host))


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


def warmup_step(ctx: StepContext, batch, epoch: int, stats: EpochStats) -> None:
    """Warm-up (weak view only): RTM on CE + confidence penalty, NTM on CE; count += 1 for all."""
    y = batch.label
    with ctx.autocast():
        logits0 = ctx.rtm(batch.weak)
        logits1 = ctx.ntm(batch.weak)
    loss0 = M.cross_entropy(logits0, y, ctx.label_smoothing) + M.conf_penalty(logits0.float())
    loss1 = M.cross_entropy(logits1, y, ctx.label_smoothing)
    ctx.bank.count.index_add_(0, batch.index, torch.ones_like(batch.index))
    backward_and_step(ctx, loss0 + loss1)
    everyone = torch.ones_like(y, dtype=torch.bool)
    stats.add(sel=everyone, y=y, true=batch.true_label, mining=torch.zeros((), dtype=torch.bool, device=y.device),
              loss0=loss0, loss1=loss1, pred0=logits0.argmax(1), pred1=logits1.argmax(1))


def standard_step(ctx: StepContext, batch, epoch: int, stats: EpochStats) -> None:
    """The paper's "Standard" row: plain cross-entropy on every sample, for both nets."""
    y = batch.label
    with ctx.autocast():
        logits0 = ctx.rtm(batch.weak)
        logits1 = ctx.ntm(batch.weak)
    loss0 = M.cross_entropy(logits0, y, ctx.label_smoothing)
    loss1 = M.cross_entropy(logits1, y, ctx.label_smoothing)
    backward_and_step(ctx, loss0 + loss1)
    everyone = torch.ones_like(y, dtype=torch.bool)
    stats.add(sel=everyone, y=y, true=batch.true_label, mining=torch.zeros((), dtype=torch.bool, device=y.device),
              loss0=loss0, loss1=loss1, pred0=logits0.argmax(1), pred1=logits1.argmax(1))


def robust_step(ctx: StepContext, batch, epoch: int, stats: EpochStats) -> None:
    """The robust phase (ACT_SPEC.md steps 1-9) on one batch."""
    idx, y = batch.index, batch.label
    with ctx.autocast():
        logits0 = ctx.rtm(batch.weak)
        logits1 = ctx.ntm(batch.weak)
    p0 = logits0.float().softmax(dim=1)
    pred0, pred1 = logits0.argmax(dim=1), logits1.argmax(dim=1)
    mining = M.memorisation_check(pred0, pred1, y, ctx.tau)
    sel = M.select(pred0, pred1, y, mining, ctx.selection, ctx.mine)
    M.count_selected(ctx.bank.count, idx, sel)
    ce0 = M.cross_entropy(logits0, y, ctx.label_smoothing, reduction="none")
    l_sel = M.selected_loss(ce0, sel, ctx.bank.count[idx], epoch, ctx.reweight)
    l_cr = None
    if ctx.consistency:
        ema_new, pseudo = M.consistency_targets(ctx.bank.ema[idx], p0.detach(), y, sel)
        with ctx.autocast():
            logits_s = ctx.rtm(batch.strong)
        l_cr = M.cross_entropy(logits_s, pseudo, ctx.label_smoothing)
        ctx.bank.ema[idx] = ema_new
    loss0 = M.rtm_loss(l_sel, l_cr)
    loss1 = M.cross_entropy(logits1, y, ctx.label_smoothing)
    backward_and_step(ctx, loss0 + loss1)
    stats.add(sel=sel, y=y, true=batch.true_label, mining=mining if ctx.mine else torch.zeros_like(mining),
              loss0=loss0, loss1=loss1, pred0=pred0, pred1=pred1)


@torch.no_grad()
def evaluate(nets: list[nn.Module], batches, amp_dtype: torch.dtype | None = None) -> list[float]:
    """Test accuracy (%) of each net; counts stay on the device until the end."""
    for net in nets:
        net.eval()
    correct = None
    total = 0
    for images, labels in batches:
        device_type = images.device.type
        ctx = torch.autocast(device_type=device_type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with ctx:
            hits = torch.stack([(net(images).argmax(1) == labels).sum() for net in nets])
        correct = hits if correct is None else correct + hits
        total += len(labels)
    for net in nets:
        net.train()
    if correct is None or total == 0:
        return [float("nan")] * len(nets)
    return [100.0 * c / total for c in correct.tolist()]

"""The step of K packed runs: one forward of each packed net, the loss math mapped over the runs.

A pack's StepContext is an ordinary act/step/engine.py StepContext whose nets are the grouped
twins of the K runs' nets (act/pack/models.py), whose optimisers are one fused SGD per packed
net (the runs share their learning-rate plans: fused SGD reads one 0-d lr tensor), and whose
bank is the K banks stacked: count (K, N), ema (K, N, C). Its batch is a Batch whose images are
the K runs' batches side by side along channels, (B, K*C, H, W), and whose index, label and
true_label are (B, K): batch first, runs next, as the twins' logits (B, K, classes).

The loss functions here have the signature of the engine's (ctx, batch, totals), so
engine.eager_step runs them (and engine.PhaseStep, which reads only the batch's first
dimension), with `PackStats` holding one statistics row per run. Each runs the engine's own
forwards on the packed nets, then the engine's loss math after the forwards
(`robust_from_logits`, `every_sample_from_logits`) under torch.func.vmap over the runs: each
run sees its own logits, labels, indices, bank rows and statistics row; its bank and
statistics are updated in place. One backward over the sum of the K runs' losses: run k's
loss depends only on run k's weights, so each run gets its own gradients.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch.func import vmap

from act.errors import ActError
from act.method import functions as M
from act.pack.models import PREFIX, Packed, pack, stack_images, unpack
from act.step import engine

# StepContext fields that are per run, or per pack; every other one (the method's settings) the
# runs of a pack share.
OWN_FIELDS = ("rtm", "ntm", "rtm_opt", "ntm_opt", "bank", "epoch")


class PackStats(engine.EpochStats):
    """The K runs' epoch statistics: one float64 row per run, (K, len(STAT_NAMES))."""

    def __init__(self, device: torch.device, runs: int):
        self.totals = torch.zeros(runs, len(engine.STAT_NAMES), dtype=torch.float64, device=device)

    def read(self) -> list[dict[str, float]]:
        return [dict(zip(engine.STAT_NAMES, row)) for row in self.totals.tolist()]


def pack_contexts(ctxs: list[engine.StepContext]) -> engine.StepContext:
    """The StepContext of a pack from the K runs' own (each as a run alone builds it: its nets
    from its seed, its bank from its noisy labels; or as a resumed run restores it, its optimiser
    holding momentum). The runs' nets, optimiser settings and learning rates, and method settings
    must agree; the K contexts are left as they are (`unpack_run` writes a run's state back)."""
    first = ctxs[0]
    if any(c.all_sum is not None for c in ctxs):
        raise ActError("packed runs train in one process; torchrun runs cannot be packed")
    if any(c.scaler is not None for c in ctxs):  # one scale for K runs: an overflow in one would skip all K steps
        raise ActError("packed runs cannot use fp16 loss scaling; use run.amp=bf16 or off")
    for field in dataclasses.fields(first):
        if field.name not in OWN_FIELDS and any(getattr(c, field.name) != getattr(first, field.name) for c in ctxs):
            raise ActError(f"runs in one pack need the same {field.name}; these differ")
    rtm, ntm = pack([c.rtm for c in ctxs]), pack([c.ntm for c in ctxs])
    bank = M.Bank(count=torch.stack([c.bank.count for c in ctxs]), ema=torch.stack([c.bank.ema for c in ctxs]))
    return dataclasses.replace(first, rtm=rtm, ntm=ntm, bank=bank, epoch=first.epoch.clone(),
                               rtm_opt=packed_optimiser(rtm, [c.rtm for c in ctxs], [c.rtm_opt for c in ctxs]),
                               ntm_opt=packed_optimiser(ntm, [c.ntm for c in ctxs], [c.ntm_opt for c in ctxs]))


def packed_optimiser(twin: Packed, nets: list[torch.nn.Module],
                     optimisers: list[torch.optim.Optimizer]) -> torch.optim.Optimizer:
    """One optimiser of the runs' class and settings over the packed net `twin` of `nets`; a 0-d lr
    tensor of its own, which engine.set_lrs fills per epoch for all K runs. The runs' optimiser
    state (momentum buffers: a resumed pack's) is packed as their parameters are, K blocks
    along the first dimension."""
    groups = [opt.param_groups for opt in optimisers]
    if any(len(g) != 1 for g in groups):
        raise ValueError("a packed optimiser is built from optimisers of one parameter group")
    settings = [{k: v for k, v in g[0].items() if k != "params"} for g in groups]
    if any(not same_settings(s, settings[0]) for s in settings):
        raise ActError("runs in one pack need the same optimiser settings and learning rates")
    lr = settings[0]["lr"]
    packed = type(optimisers[0])(twin.parameters(), **{**settings[0], "lr": lr.clone() if torch.is_tensor(lr) else lr})
    plain = [dict(net.named_parameters()) for net in nets]
    for name, param in twin.named_parameters():
        states = [opt.state.get(params[name.removeprefix(PREFIX)], {}) for opt, params in zip(optimisers, plain)]
        if any(s.keys() != states[0].keys() for s in states):
            raise ValueError(f"the runs of a pack hold different optimiser state for {name}; pack runs at one epoch")
        if states[0]:
            packed.state[param] = {key: packed_state([s[key] for s in states], param) for key in states[0]}
    return packed


def packed_state(values: list, param: torch.Tensor):
    """The K runs' optimiser state of one parameter as the packed optimiser holds it: a tensor of
    the parameter's shape per run stacked in the packed parameter's layout (fused SGD reads the
    buffer as it reads the parameter); anything else the runs must share."""
    if torch.is_tensor(values[0]) and values[0].dim():
        return torch.empty_like(param).copy_(torch.cat(values))
    if any(not same_settings({"v": v}, {"v": values[0]}) for v in values):
        raise ValueError("the runs of a pack hold different optimiser step state; pack runs at one epoch")
    return values[0].clone() if torch.is_tensor(values[0]) else values[0]


def unpack_optimiser(twin: Packed, packed: torch.optim.Optimizer, k: int, net: torch.nn.Module,
                     optimiser: torch.optim.Optimizer) -> None:
    """Run k's block of the packed optimiser's state into `optimiser`, the one of its plain `net`
    (as `unpack` gives its weights): its checkpoint then holds what the run alone would."""
    plain = dict(net.named_parameters())
    for name, param in twin.named_parameters():
        state = packed.state.get(param)
        if state:
            target = plain[name.removeprefix(PREFIX)]
            optimiser.state[target] = {key: run_block(value, twin.runs, k, target) for key, value in state.items()}
    lr, group = packed.param_groups[0]["lr"], optimiser.param_groups[0]
    if torch.is_tensor(lr) and torch.is_tensor(group["lr"]) and group["lr"].device == lr.device:
        group["lr"].copy_(lr)  # in place: a step captured alone reads this tensor
    else:
        group["lr"] = lr.clone() if torch.is_tensor(lr) else lr


def unpack_run(packed: engine.StepContext, k: int, ctx: engine.StepContext) -> None:
    """Run k's state in the pack written into its own StepContext `ctx`, in place: both nets,
    both optimisers (state and learning rate) and its bank, as the run alone would hold them."""
    for twin, packed_opt, net, opt in ((packed.rtm, packed.rtm_opt, ctx.rtm, ctx.rtm_opt),
                                       (packed.ntm, packed.ntm_opt, ctx.ntm, ctx.ntm_opt)):
        net.load_state_dict(unpack(twin, k))
        unpack_optimiser(twin, packed_opt, k, net, opt)
    ctx.bank.count.copy_(packed.bank.count[k])
    ctx.bank.ema.copy_(packed.bank.ema[k])


def run_block(value, runs: int, k: int, target: torch.Tensor):
    """Run k's block of a packed optimiser state entry, in the layout of its plain parameter `target`."""
    if not (torch.is_tensor(value) and value.dim()):
        return value.clone() if torch.is_tensor(value) else value
    return torch.empty_like(target).copy_(value.unflatten(0, (runs, -1))[k])


def same_settings(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) if torch.is_tensor(a[k]) else a[k] == b[k]
        for k in a)


def stack_batches(batches: list):
    """K runs' batches (pipelines' Batch, each (B, ...)) as the pack's batch: images side by
    side along channels (B, K*C, H, W), index, label and true_label (B, K)."""
    def stacked(name: str):
        tensors = [getattr(b, name) for b in batches]
        if tensors[0] is None:
            return None
        return stack_images(tensors) if tensors[0].dim() == 4 else torch.stack(tensors, dim=1)

    return dataclasses.replace(batches[0], **{f.name: stacked(f.name) for f in dataclasses.fields(batches[0])})


def over_runs(from_logits: Callable, ctx: engine.StepContext, batch, logits: tuple, totals: torch.Tensor,
              **settings) -> torch.Tensor:
    """The sum over the runs of `from_logits(run's ctx, run's batch, *run's logits, run's totals)`,
    one vmap over the runs (dimension 1 of the batch's labels and of the logits, 0 of the bank
    and the statistics)."""
    def one_run(count, ema, run_totals, index, label, true_label, *run_logits):
        run_ctx = dataclasses.replace(ctx, bank=M.Bank(count=count, ema=ema))
        run_batch = dataclasses.replace(batch, index=index, label=label, true_label=true_label, weak=None, strong=None)
        return from_logits(run_ctx, run_batch, *run_logits, run_totals, **settings)

    dims = (0, 0, 0, 1, 1, 1, *(None if t is None else 1 for t in logits))
    losses = vmap(one_run, in_dims=dims)(ctx.bank.count, ctx.bank.ema, totals, batch.index, batch.label,
                                         batch.true_label, *logits)
    return losses.sum()


def every_sample_losses(ctx: engine.StepContext, batch, totals: torch.Tensor, warmup: bool) -> torch.Tensor:
    return over_runs(engine.every_sample_from_logits, ctx, batch, engine.weak_forwards(ctx, batch), totals,
                     warmup=warmup)


def warmup_losses(ctx: engine.StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    return every_sample_losses(ctx, batch, totals, warmup=True)


def standard_losses(ctx: engine.StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    return every_sample_losses(ctx, batch, totals, warmup=False)


def robust_losses(ctx: engine.StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    return over_runs(engine.robust_from_logits, ctx, batch, engine.robust_forwards(ctx, batch), totals)


# engine's phase -> the pack's loss function of that phase
PACKED_LOSSES = {"warmup": warmup_losses, "standard": standard_losses, "robust": robust_losses}
# engine's phase -> the engine's loss function, of which PACKED_LOSSES holds the packed form
BUILT_IN = {"warmup": engine.warmup_losses, "standard": engine.standard_losses, "robust": engine.robust_losses}


def packed_losses(losses: dict[str, Callable]) -> dict[str, Callable] | None:
    """The pack's loss function of each phase of a method (act/method/registry.py `MethodSpec.losses`),
    or None when a phase's is not the engine's own (a method's own loss has no packed form)."""
    if any(BUILT_IN.get(phase) is not fn for phase, fn in losses.items()):
        return None
    return {phase: PACKED_LOSSES[phase] for phase in losses}

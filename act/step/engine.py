"""The loss function of each built-in phase, the step that runs it, and the evaluation pass.

The maths is act/method/functions.py; this module arranges it for speed: both nets, one
backward over L_rtm + L_ntm and both fused SGD updates, with no host sync and static shapes
(`build_steps`: compiled, and on CUDA captured as one graph per phase by `PhaseStep` through
act/graphs.py). Batch-level means go through act/step/batch.py (one process or DDP).
docs/pipelines.md, *The step*.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from act.errors import ActError
from act.graphs import (CaptureStream, Graph, GraphType, capture, failure_text, from_compile, graph_type,
                        no_host_sync, strict_capture_error)
from act.method import functions as M
from act.step.batch import OneProcess, Ranks, means

# The epoch statistics, in the order of EpochStats.totals.
STAT_NAMES = ("samples", "selected", "selected_clean", "clean", "mining_steps", "steps",
              "rtm_loss", "ntm_loss", "rtm_correct", "ntm_correct")


@dataclass
class StepContext:
    """What a step needs besides the batch: both nets, both optimisers, the bank and settings."""

    rtm: nn.Module
    ntm: nn.Module
    rtm_opt: torch.optim.Optimizer
    ntm_opt: torch.optim.Optimizer
    bank: M.Bank
    tau: float = 0.025
    selection: str = "cifar"
    mine: bool = True
    reweight: bool = True
    consistency: bool = True
    label_smoothing: float = 0.0
    fuse_views: bool = False  # one RTM forward over [weak; strong]: shared batch-norm statistics
    amp_dtype: torch.dtype | None = None  # None: fp32
    autocast_cache: bool = True  # off for CUDA-graph capture: cached weight casts would outlive it
    scaler: torch.amp.GradScaler | None = None  # fp16 only
    ranks: int = 1  # processes of a DDP run
    all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None  # DDP: sums a tensor over the ranks, in place
    epoch: torch.Tensor = field(default=None)  # 0-d float on the device; set by `set_epoch`

    def __post_init__(self) -> None:
        if self.epoch is None:
            self.epoch = torch.zeros((), device=self.bank.count.device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch.fill_(epoch)

    def means(self, y: torch.Tensor) -> OneProcess | Ranks:
        """The batch this step's means are over: its own in one process, the global one under DDP."""
        return means(self.ranks, self.all_sum, y)

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.bank.count.device.type, dtype=self.amp_dtype,
                              cache_enabled=self.autocast_cache)


class EpochStats:
    """Device-side sums over an epoch in one float64 vector, kept for the whole run (a
    captured step writes to its address); `reset` zeroes it per epoch, `read` syncs once."""

    def __init__(self, device: torch.device):
        self.totals = torch.zeros(len(STAT_NAMES), dtype=torch.float64, device=device)

    def reset(self) -> None:
        self.totals.zero_()

    def read(self) -> dict[str, float]:
        return dict(zip(STAT_NAMES, self.totals.tolist()))


def add_stats(totals: torch.Tensor, *, sel, y, true, mining, rtm_loss, ntm_loss, rtm_pred, ntm_pred) -> None:
    """Add one batch's statistics to `totals` (one stacked add: no host sync)."""
    clean = y == true
    row = torch.stack([
        y.new_full((), len(y)), sel.sum(), (sel & clean).sum(), clean.sum(),
        mining.to(torch.float64), torch.ones((), device=y.device), rtm_loss.detach(), ntm_loss.detach(),
        (rtm_pred == y).sum(), (ntm_pred == y).sum()]).to(torch.float64)
    totals.add_(row)


def every_sample_losses(ctx: StepContext, batch, totals: torch.Tensor, warmup: bool) -> torch.Tensor:
    """Both nets on CE over every sample (weak view). In warm-up the RTM adds the confidence
    penalty and every sample's count grows by one; without it this is the paper's "Standard"."""
    return every_sample_from_logits(ctx, batch, *weak_forwards(ctx, batch), totals, warmup)


def weak_forwards(ctx: StepContext, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Both nets on the weak view: (rtm_logits, ntm_logits)."""
    with ctx.autocast():
        return ctx.rtm(batch.weak), ctx.ntm(batch.weak)


def every_sample_from_logits(ctx: StepContext, batch, rtm_logits: torch.Tensor, ntm_logits: torch.Tensor,
                             totals: torch.Tensor, warmup: bool) -> torch.Tensor:
    """`every_sample_losses` after the forwards: a function of the logits (act/pack/step.py maps
    it over the runs of a pack); reads `batch`'s index, label and true_label only."""
    y = batch.label
    g = ctx.means(y)
    rtm_loss = g.mean(lambda r: M.cross_entropy(rtm_logits, y, ctx.label_smoothing, reduction=r))
    if warmup:
        rtm_loss = rtm_loss + g.mean(lambda r: M.conf_penalty(M.widen(rtm_logits), r))
        ctx.bank.count.scatter_add_(0, batch.index, torch.ones_like(batch.index))  # as M.count_selected
    ntm_loss = g.mean(lambda r: M.cross_entropy(ntm_logits, y, ctx.label_smoothing, reduction=r))
    add_stats(totals, sel=torch.ones_like(y, dtype=torch.bool), y=y, true=batch.true_label,
              mining=torch.zeros((), device=y.device), rtm_loss=rtm_loss, ntm_loss=ntm_loss,
              rtm_pred=rtm_logits.argmax(1), ntm_pred=ntm_logits.argmax(1))
    return rtm_loss + ntm_loss


def warmup_losses(ctx: StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    return every_sample_losses(ctx, batch, totals, warmup=True)


def standard_losses(ctx: StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    return every_sample_losses(ctx, batch, totals, warmup=False)


def robust_losses(ctx: StepContext, batch, totals: torch.Tensor) -> torch.Tensor:
    """The robust phase (ACT_SPEC.md steps 1-8) on one batch; returns L0 + L1."""
    return robust_from_logits(ctx, batch, *robust_forwards(ctx, batch), totals)


def robust_forwards(ctx: StepContext, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The robust phase's forwards: (rtm_logits, ntm_logits, strong_logits), the last the RTM's
    on the strong view (None without CR)."""
    fused = ctx.consistency and ctx.fuse_views
    strong_logits = None
    with ctx.autocast():
        if fused:
            rtm_logits, strong_logits = ctx.rtm(torch.cat([batch.weak, batch.strong])).chunk(2)
        else:
            rtm_logits = ctx.rtm(batch.weak)
        ntm_logits = ctx.ntm(batch.weak)
        if ctx.consistency and not fused:  # the public code: a second RTM forward, batch-norm statistics per view
            strong_logits = ctx.rtm(batch.strong)
    return rtm_logits, ntm_logits, strong_logits


def robust_from_logits(ctx: StepContext, batch, rtm_logits: torch.Tensor, ntm_logits: torch.Tensor,
                       strong_logits: torch.Tensor | None, totals: torch.Tensor) -> torch.Tensor:
    """`robust_losses` after the forwards (`strong_logits`: the RTM's on the strong view, None
    without CR): a function of the logits (act/pack/step.py maps it over the runs of a pack);
    reads `batch`'s index, label and true_label only. No value it computes feeds a forward, so
    running the strong view's forward first changes no number."""
    idx, y = batch.index, batch.label
    rtm_prob = M.widen(rtm_logits).softmax(dim=1)
    rtm_pred, ntm_pred = rtm_logits.argmax(dim=1), ntm_logits.argmax(dim=1)
    g = ctx.means(y)
    # agreement and disagreement: the memorisation check switches the selection (mining)
    mining, sel = g.select(rtm_pred, ntm_pred, y, ctx.tau, ctx.selection, ctx.mine)
    M.count_selected(ctx.bank.count, idx, sel)
    rtm_ce = M.cross_entropy(rtm_logits, y, ctx.label_smoothing, reduction="none")
    l_sel = g.selected_loss(rtm_ce, sel, ctx.bank.count[idx], ctx.epoch, ctx.reweight)  # DSRW
    l_cr = None
    if ctx.consistency:
        ema_new, pseudo = M.consistency_targets(ctx.bank.ema[idx], rtm_prob.detach(), y, sel)
        l_cr = g.mean(lambda r: M.consistency_loss(strong_logits, pseudo, ctx.label_smoothing, reduction=r))
        ctx.bank.ema[idx] = ema_new
    rtm_loss = M.rtm_loss(l_sel, l_cr)
    ntm_loss = g.mean(lambda r: M.cross_entropy(ntm_logits, y, ctx.label_smoothing, reduction=r))
    add_stats(totals, sel=sel, y=y, true=batch.true_label, mining=mining & ctx.mine, rtm_loss=rtm_loss,
              ntm_loss=ntm_loss, rtm_pred=rtm_pred, ntm_pred=ntm_pred)
    return rtm_loss + ntm_loss


def backward_and_step(ctx: StepContext, loss: torch.Tensor) -> None:
    """One backward over L0 + L1 and both optimiser updates (through the scaler for fp16)."""
    ctx.rtm_opt.zero_grad(set_to_none=True)
    ctx.ntm_opt.zero_grad(set_to_none=True)
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        ctx.scaler.step(ctx.rtm_opt)
        ctx.scaler.step(ctx.ntm_opt)
        ctx.scaler.update()
    else:
        loss.backward()
        ctx.rtm_opt.step()
        ctx.ntm_opt.step()


def run_step(ctx: StepContext, losses: Callable, batch, stats: EpochStats) -> None:
    backward_and_step(ctx, losses(ctx, batch, stats.totals))


def eager_step(ctx: StepContext, losses: Callable, batch, epoch: int, stats: EpochStats) -> None:
    """One plain step of a phase (`losses`: its loss function) at `epoch`: no static buffers, no
    compile, no graph (the benchmarks' and the equivalence tests' reference)."""
    ctx.set_epoch(epoch)
    run_step(ctx, losses, batch, stats)


def set_lrs(ctx: StepContext, rtm_lr: float, ntm_lr: float) -> None:
    """Write the epoch's learning rates into the optimisers' 0-d lr tensors, in place: a
    captured step reads them from the device. A float lr, or a tensor elsewhere than the
    parameters (an optimiser state loaded from a checkpoint onto the CPU), becomes such a
    tensor first; that happens before any capture, which holds the tensor's address."""
    for opt, lr in ((ctx.rtm_opt, rtm_lr), (ctx.ntm_opt, ntm_lr)):
        for group in opt.param_groups:
            device = group["params"][0].device
            if not isinstance(group["lr"], torch.Tensor) or group["lr"].device != device:
                group["lr"] = torch.tensor(0.0, device=device)
            group["lr"].fill_(lr)


def copy_batch(static, batch):
    """Copy `batch` (a pipelines.base.Batch) into the static buffers and return them; the
    first call allocates the buffers like the batch (same shapes, dtypes, memory format)."""
    tensors = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    if static is None:
        return dataclasses.replace(batch, **{k: None if t is None else torch.empty_like(t) for k, t in tensors.items()})
    for name, src in tensors.items():
        if src is not None:
            getattr(static, name).copy_(src, non_blocking=True)
    return static


class PhaseStep:
    """The step of one phase: compiled losses (when asked), backward and both updates.

    With `cuda_graph`, full batches are copied into static buffers and the step is replayed
    as one CUDA graph from them (act/graphs.py: warm-up steps and capture on the step's own
    stream, thread-local capture errors); `static_inputs` alone runs the same capturable step
    eagerly from those buffers (what the CPU tests check). Any other batch size (the epoch's
    last batch) runs eagerly from the batch itself.

    Two things may fail on a new machine, each at a moment where it can still be undone (`Undo`):
    - the compile, at the first compiled step (inductor needs Triton, a C compiler and Python's
      headers then): with `compile_strict` (run.compile=true) the run stops with one line; else
      that step is undone and run eagerly, the phase stays eager (`compile_fallback` says why);
    - the capture: the last warm-up step runs under `no_host_sync` (on CUDA, an op that makes the
      host wait raises), so a step that would break its capture is undone and rerun before any
      capture begins; a capture that still raises leaves the phase on the static-buffer step,
      compiled unless the failure came from compile. `fallback` says why (the first cause, and
      the line of the op); with `strict` (run.cuda_graph=true) the run stops with one line.
    `mode` and `compile_mode` are what the summary records."""

    WARMUP_STEPS = 3  # real steps on the capture stream before capture (cuDNN, autograd and compile set up)

    def __init__(self, ctx: StepContext, losses: Callable, batch_size: int, compile: bool, mode: str = "default",
                 cuda_graph: bool = False, static_inputs: bool = False, strict: bool = False,
                 graphs: GraphType | None = None, phase: str = "step", compile_strict: bool = False):
        self.ctx, self.batch_size, self.phase, self.strict = ctx, batch_size, phase, strict
        self.cuda_graph, self.static_inputs = cuda_graph, static_inputs or cuda_graph
        self.eager = losses
        self.compiled = torch.compile(self.eager, mode=mode, dynamic=False) if compile else self.eager
        self.compile_strict, self.compile_proven = compile_strict, not compile
        self.compile_fallback: str | None = None  # why compile failed, under run.compile=auto
        self.device = ctx.bank.count.device
        self.graph_type = graphs or graph_type(self.device)
        self.stream = CaptureStream(self.device) if cuda_graph else None
        self.static = None  # the full-batch buffers every compiled or captured step reads
        self.graph = None
        self.graph_totals: torch.Tensor | None = None
        self.warmups_left = self.WARMUP_STEPS
        self.fallback: str | None = None  # why capture failed, under run.cuda_graph=auto
        self.captured = False  # a graph of this phase has replayed at least once

    @property
    def mode(self) -> str:
        if self.fallback is not None:
            return f"fell back: {self.fallback}"
        if self.captured:
            return "graph"
        return "eager (not captured: too few full batches)" if self.cuda_graph else "eager"

    @property
    def compile_mode(self) -> str:
        """"compiled", "not compiled" (run.compile off), or "fell back: <why>"."""
        if self.compile_fallback is not None:
            return f"fell back: {self.compile_fallback}"
        return "not compiled" if self.compiled is self.eager else "compiled"

    def __call__(self, batch, stats: EpochStats) -> None:
        # A Python branch on a shape, not on a tensor value: no host sync.
        if len(batch.index) != self.batch_size:
            run_step(self.ctx, self.eager, batch, stats)
            return
        if not self.static_inputs:
            self.run_compiled(batch, stats)
            return
        if self.static is None:
            self.static = copy_batch(None, batch)
        copy_batch(self.static, batch)
        if not self.cuda_graph:
            self.run_compiled(self.static, stats)
        elif self.graph is not None:
            if stats.totals is not self.graph_totals:
                raise RuntimeError("a captured step writes one statistics vector; keep EpochStats for the run")
            self.graph.replay()
        elif self.warmups_left > 1:
            self.warmups_left -= 1
            self.stream.run(lambda: self.run_compiled(self.static, stats))
        elif self.warmups_left:
            self.warmups_left -= 1
            self.stream.run(lambda: self.last_warmup(stats))
        else:
            self.capture(stats)

    def run_compiled(self, batch, stats: EpochStats) -> None:
        """One step through the compiled losses. The first (torch.compile compiles then) is undone
        if it fails: the run stops (compile_strict) or the phase goes on eagerly from this step."""
        if self.compile_proven:
            run_step(self.ctx, self.compiled, batch, stats)
            return
        error = attempt(self.ctx, stats, lambda: run_step(self.ctx, self.compiled, batch, stats))
        if error is None:
            self.compile_proven = True
            return
        if self.compile_strict:
            raise ActError(f"run.compile=true: compiling the {self.phase} step failed ({failure_text(error)}); "
                           f"run.compile=auto falls back to the eager step, false does not compile") from error
        self.compile_fallback, self.compiled, self.compile_proven = failure_text(error), self.eager, True
        run_step(self.ctx, self.eager, batch, stats)

    def last_warmup(self, stats: EpochStats) -> None:
        """The warm-up step before capture, where an op that syncs with the host raises
        (`no_host_sync`): such a step is undone, rerun, and the phase is not captured."""
        def checked() -> None:
            with no_host_sync(self.device):
                self.run_compiled(self.static, stats)

        error = attempt(self.ctx, stats, checked)
        if error is not None:
            self.give_up_capture(f"the step makes the host wait for the device: {failure_text(error)}", False, stats)

    def capture(self, stats: EpochStats) -> None:
        """Capture the step and replay it for the current batch; on failure fall back (or stop)."""
        self.graph, failure = capture_step(self.ctx, self.compiled, self.static, stats, self.stream, self.graph_type,
                                           self.strict, f"the {self.phase} step")
        if failure is not None:  # capture ran nothing: this batch still trains, on the static-buffer step
            self.give_up_capture(failure_text(failure), from_compile(failure), stats)
            return
        self.graph_totals, self.captured = stats.totals, True
        self.graph.replay()  # capture records the step without running it

    def give_up_capture(self, why: str, compile_failed: bool, stats: EpochStats) -> None:
        """The phase left on the static-buffer step for the rest of the run (compiled, unless the
        failure came from compile), the current batch trained there; with `strict`, one line."""
        if self.strict:
            raise strict_capture_error(f"the {self.phase} step", why)
        self.fallback, self.cuda_graph, self.graph = why, False, None
        if compile_failed:
            self.compile_fallback, self.compiled = why, self.eager
        self.run_compiled(self.static, stats)

    def release(self) -> None:
        """Free the captured graph's memory pool (the phase is over); a later call captures anew."""
        self.graph, self.graph_totals, self.warmups_left = None, None, self.WARMUP_STEPS


def step_state(ctx: StepContext, stats: EpochStats) -> list[torch.Tensor]:
    """Every tensor a step may write in place: statistics, bank, epoch, both nets' parameters and
    buffers, both optimisers' state."""
    tensors = [stats.totals, ctx.bank.count, ctx.bank.ema, ctx.epoch]
    for net in (ctx.rtm, ctx.ntm):
        tensors += [*net.parameters(), *net.buffers()]
    for opt in (ctx.rtm_opt, ctx.ntm_opt):
        tensors += [v for state in opt.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
    return tensors


class Undo:
    """A copy of what a step may change (`step_state`), and of which parameters had optimiser
    state: `restore` puts everything back as it was before the step."""

    def __init__(self, ctx: StepContext, stats: EpochStats):
        self.ctx = ctx
        self.saved = [(t, t.detach().clone()) for t in step_state(ctx, stats)]
        self.keys = [set(opt.state) for opt in (ctx.rtm_opt, ctx.ntm_opt)]

    def restore(self) -> None:
        with torch.no_grad():
            for tensor, copy in self.saved:
                tensor.copy_(copy)
        for opt, keys in zip((self.ctx.rtm_opt, self.ctx.ntm_opt), self.keys):
            for param in [p for p in opt.state if p not in keys]:  # state a failed first update created
                del opt.state[param]
            opt.zero_grad(set_to_none=True)


def attempt(ctx: StepContext, stats: EpochStats, fn: Callable[[], None]) -> Exception | None:
    """Run the step `fn`; None when it succeeds, else its error, with everything it changed undone."""
    undo = Undo(ctx, stats)
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the caller decides: stop, or fall back
        undo.restore()
        return exc
    return None


def compile_modes(steps: dict[str, PhaseStep]) -> dict[str, str]:
    """How each phase's losses ran: "compiled", "not compiled" or "fell back: <why>"."""
    return {phase: step.compile_mode for phase, step in steps.items()}


def capture_step(ctx: StepContext, losses: Callable, static, stats: EpochStats, stream: CaptureStream,
                 graphs: GraphType = Graph, strict: bool = False, what: str = "the step"):
    """Capture losses, backward and both updates from `static` as one graph: (graph, None), or
    (None, the error) when capture fails (act/graphs.py `capture`).

    Gradients are set to None inside the captured function, so the captured backward writes (not
    accumulates) them into the graph's pool; every replay then recomputes them from the static
    inputs (and `EagerGraph`, which reruns the function, does the same)."""
    if ctx.scaler is not None:
        raise ValueError("fp16 loss scaling reads the scale on the host each step and cannot be captured")
    return capture(lambda: run_step(ctx, losses, static, stats), stream, graphs, strict, what)


def build_steps(ctx: StepContext, losses: dict[str, Callable], batch_size: int, compile: bool = False,
                mode: str = "default", cuda_graph: bool = False, static_inputs: bool = False, strict: bool = False,
                graphs: GraphType | None = None, compile_strict: bool = False) -> dict[str, PhaseStep]:
    """One step per phase of a method (`losses`: phase -> loss function, act/method/registry.py);
    compile and capture happen lazily at each phase's first full batches."""
    return {phase: PhaseStep(ctx, fn, batch_size, compile, mode, cuda_graph, static_inputs, strict, graphs, phase,
                             compile_strict)
            for phase, fn in losses.items()}


@torch.no_grad()
def evaluate(nets: list[nn.Module], batches, amp_dtype: torch.dtype | None = None,
             all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[float]:
    """Test accuracy (%) of each net; counts stay on the device until the end. Under DDP each
    rank passes its share of the test batches and `all_sum` adds the counts of all ranks."""
    for net in nets:
        net.eval()
    counts = torch.zeros(len(nets) + 1, dtype=torch.int64, device=next(nets[0].parameters()).device)
    for images, labels in batches:
        ctx = torch.autocast(device_type=images.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with ctx:
            counts += torch.stack([*((net(images).argmax(1) == labels).sum() for net in nets),
                                   labels.new_full((), len(labels))])
    for net in nets:
        net.train()
    if all_sum is not None:
        all_sum(counts)
    *correct, total = counts.tolist()
    if total == 0:
        return [float("nan")] * len(nets)
    return [100.0 * c / total for c in correct]

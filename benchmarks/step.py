"""Time one robust-phase step: the public code's structure (`naive`) against the fused engine step.

    python -m benchmarks.step --model sevencnn --classes 100 --batch 128 --device cuda --steps 200 \
        --json benchmarks/results/step-h100.json

Every variant trains its own pair of nets (same seed) on the same synthetic batches, which
live on the device before the clock starts (random images, labels, sample indices): the step
alone is timed, not a data pipeline. Warm-up steps (compilation, cuDNN autotuning) are not
timed; on CUDA the device is synchronised before each clock read. The equivalence check runs
the naive and the fused step in fp32 from identical states on identical batches and reports
the largest difference in the nets' parameters and buffers and in the memory bank, next to
the drift of the naive step against itself from weights one ulp apart (training amplifies
rounding differences, so that drift is the scale the difference is to be read against).
"""
from __future__ import annotations

import argparse
import copy
import platform
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from act.config import Config
from act.models import create_model
from act.run.build import step_context
from act.run.runtime import decide
from act.step import engine
from benchmarks.naive_step import NaiveACT
from benchmarks.record import command_line, write_record
from pipelines.base import Batch

LR, LR1 = 0.01, 0.08  # RTM and NTM learning rates of the paper's CIFAR runs
EPOCH = 60  # any robust-phase epoch; it only scales the re-weighting
POOL = 8  # distinct synthetic batches, cycled


@dataclass
class Setup:
    model: str
    classes: int
    batch: int
    device: torch.device
    samples: int  # memory-bank length N
    seed: int = 0
    tau: float = 0.025
    compile_mode: str = "default"


def make_nets(setup: Setup) -> tuple[nn.Module, nn.Module]:
    """RTM and NTM, built from the same seed for every variant."""
    torch.manual_seed(setup.seed)
    return tuple(create_model(setup.model, setup.classes).to(setup.device) for _ in range(2))


def noisy_labels(setup: Setup) -> torch.Tensor:
    generator = torch.Generator().manual_seed(setup.seed)
    return torch.randint(0, setup.classes, (setup.samples,), generator=generator).to(setup.device)


def synthetic_batches(setup: Setup, count: int, noisy: torch.Tensor, seed: int = 1) -> list[Batch]:
    """`count` batches on the device: random weak and strong views, distinct indices per batch."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        index = torch.randperm(setup.samples, generator=generator)[:setup.batch]
        weak, strong = (torch.randn(setup.batch, 3, 32, 32, generator=generator) for _ in range(2))
        true = torch.randint(0, setup.classes, (setup.batch,), generator=generator)
        index = index.to(setup.device)
        batches.append(Batch(index=index, weak=weak.to(setup.device), strong=strong.to(setup.device),
                             label=noisy[index], true_label=true.to(setup.device)))
    return batches


def fused_layout(device: torch.device) -> Callable[[Batch], Batch]:
    """The layout the project's pipelines hand to the fused step: channels_last on CUDA."""
    return channels_last if device.type == "cuda" else (lambda batch: batch)


def channels_last(batch: Batch) -> Batch:
    return Batch(index=batch.index, weak=batch.weak.contiguous(memory_format=torch.channels_last),
                 strong=batch.strong.contiguous(memory_format=torch.channels_last), label=batch.label,
                 true_label=batch.true_label)


def fused_context(rtm: nn.Module, ntm: nn.Module, noisy: torch.Tensor, num_classes: int, *, tau: float = 0.025,
                  mine: bool = True, amp: bool = False) -> engine.StepContext:
    """The trainer's StepContext (act/run/build.py `step_context`) for the paper's CIFAR settings
    (the defaults of act/config.py) with these learning rates, tau and mining: channels_last nets
    on CUDA, the trainer's optimisers, the bank on the device, autocast as `run.amp=auto` picks."""
    device = noisy.device
    if device.type == "cuda":
        rtm, ntm = (net.to(memory_format=torch.channels_last) for net in (rtm, ntm))
    cfg = Config()
    cfg.optim.lr, cfg.optim.lr1, cfg.method.tau, cfg.method.ablation.mining = LR, LR1, tau, mine
    cfg.run.amp = "auto" if amp else "off"
    cfg.run.device = str(device)
    return step_context(cfg, decide(cfg), rtm, ntm, noisy, num_classes)


def naive_runner(setup: Setup) -> tuple[Callable[[Batch], object], Callable[[Batch], Batch]]:
    noisy = noisy_labels(setup)
    naive = NaiveACT(*make_nets(setup), noisy, setup.classes, lr=LR, lr1=LR1, tau=setup.tau)
    return (lambda b: naive.robust_step(b.weak, b.strong, b.label, b.index, EPOCH)), (lambda b: b)


def fused_runner(setup: Setup, compile: bool = False, amp: bool = False) -> tuple[Callable, Callable]:
    ctx = fused_context(*make_nets(setup), noisy_labels(setup), setup.classes, tau=setup.tau, amp=amp)
    stats = engine.EpochStats(setup.device)
    layout = fused_layout(setup.device)
    if not compile:
        return (lambda b: engine.eager_step(ctx, engine.robust_losses, b, EPOCH, stats)), layout
    ctx.set_epoch(EPOCH)
    step = engine.build_steps(ctx, {"robust": engine.robust_losses}, setup.batch, compile=True, mode=setup.compile_mode)["robust"]
    return (lambda b: step(b, stats)), layout


@dataclass
class Variant:
    """A step to time: `build(setup)` returns the step (one batch) and the batch layout it takes."""

    name: str
    build: Callable[[Setup], tuple[Callable[[Batch], object], Callable[[Batch], Batch]]]
    cuda_only: bool = False


VARIANTS = (
    Variant("naive", naive_runner),
    Variant("fused", fused_runner),
    Variant("fused+compile", partial(fused_runner, compile=True), cuda_only=True),
    Variant("fused+compile+amp", partial(fused_runner, compile=True, amp=True), cuda_only=True),
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variant(variant: Variant, setup: Setup, batches: list[Batch], warmup_steps: int, steps: int) -> dict:
    step, layout = variant.build(setup)
    batches = [layout(b) for b in batches]
    for i in range(warmup_steps):
        step(batches[i % len(batches)])
    synchronize(setup.device)
    start = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    synchronize(setup.device)
    seconds = time.perf_counter() - start
    return {"variant": variant.name, "steps_per_s": steps / seconds, "ms_per_step": 1000.0 * seconds / steps}


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def state_diff(naive: NaiveACT, ctx: engine.StepContext) -> float:
    """Largest difference over both nets' parameters and buffers (BN statistics included)."""
    return max(max_abs_diff(naive.rtm.state_dict(), ctx.rtm.state_dict()),
               max_abs_diff(naive.ntm.state_dict(), ctx.ntm.state_dict()))


def bank_diff(naive: NaiveACT, ctx: engine.StepContext) -> float:
    """Largest difference over the memory bank: the EMA rows and the per-sample counts."""
    return max_abs_diff({"ema": naive.ema_bank, "count": naive.weights.cpu()},
                        {"ema": ctx.bank.ema.cpu(), "count": ctx.bank.count.cpu()})


def perturbed(net: nn.Module, seed: int) -> nn.Module:
    """A copy of `net` with every parameter moved by about one float32 ulp (relative 2**-23)."""
    net = copy.deepcopy(net)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            noise = torch.randn(p.shape, generator=generator).to(p.device)
            p.add_(p.abs() * noise * 2.0 ** -23)
    return net


def equivalence(setup: Setup, steps: int) -> dict:
    """Naive and fused robust steps in fp32 (TF32 off), lock-step from identical states.

    Rounding differs between the two (other reduction orders, one backward instead of two), and
    training amplifies any difference from step to step; `drift_floor` measures that
    amplification: the naive step against itself started from weights about one ulp apart.
    """
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        rtm, ntm = make_nets(setup)
        noisy = noisy_labels(setup)
        ctx = fused_context(copy.deepcopy(rtm), copy.deepcopy(ntm), noisy, setup.classes, tau=setup.tau)
        floor = NaiveACT(perturbed(rtm, 1), perturbed(ntm, 2), noisy, setup.classes, lr=LR, lr1=LR1, tau=setup.tau)
        naive = NaiveACT(rtm, ntm, noisy, setup.classes, lr=LR, lr1=LR1, tau=setup.tau)
        stats = engine.EpochStats(setup.device)
        layout = fused_layout(setup.device)
        mining_steps = selected = 0
        per_step = []
        for batch in synthetic_batches(setup, steps, noisy, seed=2):
            info = naive.robust_step(batch.weak, batch.strong, batch.label, batch.index, EPOCH)
            engine.eager_step(ctx, engine.robust_losses, layout(batch), EPOCH, stats)
            floor.robust_step(batch.weak, batch.strong, batch.label, batch.index, EPOCH)
            mining_steps += info["mining"]
            selected += info["selected"]
            per_step.append(state_diff(naive, ctx))
        fused = stats.read()
        return {"steps": steps, "max_abs_param_diff": per_step[-1], "max_abs_bank_diff": bank_diff(naive, ctx),
                "param_diff_per_step": per_step,
                "drift_floor": max(max_abs_diff(naive.rtm.state_dict(), floor.rtm.state_dict()),
                                   max_abs_diff(naive.ntm.state_dict(), floor.ntm.state_dict())),
                "mining_steps": mining_steps, "selected": selected,
                "same_decisions": fused["mining_steps"] == mining_steps and fused["selected"] == selected}
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def print_table(report: dict) -> None:
    s = report["setup"]
    print(f"{report['device']} | torch {report['torch']} | {s['model']}, {s['classes']} classes, batch {s['batch']}, "
          f"bank {s['samples']} | {s['steps']} timed steps after {s['warmup_steps']}")
    naive = next((r["ms_per_step"] for r in report["results"] if r["variant"] == "naive"), None)
    print(f"{'variant':<20} {'ms/step':>9} {'steps/s':>9} {'speed-up':>9}")
    for r in report["results"]:
        speedup = f"{naive / r['ms_per_step']:.2f}x" if naive else "-"
        print(f"{r['variant']:<20} {r['ms_per_step']:>9.1f} {r['steps_per_s']:>9.2f} {speedup:>9}")
    e = report["equivalence"]
    if not e["steps"]:
        return
    print(f"equivalence over {e['steps']} fp32 robust steps ({e['selected']} samples selected, mining in "
          f"{e['mining_steps']} steps, same decisions: {e['same_decisions']}):")
    print(f"  max |param diff| {e['max_abs_param_diff']:.2e} (per step: "
          f"{' '.join(f'{d:.0e}' for d in e['param_diff_per_step'])}), max |bank diff| {e['max_abs_bank_diff']:.2e}")
    print(f"  drift floor (naive vs naive from weights 1 ulp apart): {e['drift_floor']:.2e}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.step", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sevencnn")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=50000, help="memory-bank length N (CIFAR: 50000)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=100, help="timed steps per variant")
    p.add_argument("--warmup-steps", type=int, default=5, help="untimed steps per variant before the clock")
    p.add_argument("--equiv-steps", type=int, default=10, help="robust steps of the equivalence check (0: skip)")
    p.add_argument("--variants", default="", help="comma-separated subset of: " + ", ".join(v.name for v in VARIANTS))
    p.add_argument("--compile-mode", default="default", help="torch.compile mode of the compiled variants")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the figures to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this machine has no CUDA device; use --device cpu")
    setup = Setup(model=args.model, classes=args.classes, batch=args.batch, device=device, samples=args.samples,
                  seed=args.seed, compile_mode=args.compile_mode)
    wanted = set(filter(None, args.variants.split(",")))
    variants = [v for v in VARIANTS if (not v.cuda_only or device.type == "cuda") and (not wanted or v.name in wanted)]
    batches = synthetic_batches(setup, POOL, noisy_labels(setup))
    results = []
    for variant in variants:
        results.append(time_variant(variant, setup, batches, args.warmup_steps, args.steps))
        print(f"  {variant.name}: {results[-1]['ms_per_step']:.1f} ms/step", flush=True)
    report = {
        "device": device_name(device), "torch": torch.__version__,
        "setup": {"model": args.model, "classes": args.classes, "batch": args.batch, "samples": args.samples,
                  "steps": args.steps, "warmup_steps": args.warmup_steps, "compile_mode": args.compile_mode},
        "results": results,
        "equivalence": equivalence(setup, args.equiv_steps) if args.equiv_steps else
        {"steps": 0, "max_abs_param_diff": None, "max_abs_bank_diff": None},
    }
    print_table(report)
    if args.json:
        write_record(args.json, "step", {k: report[k] for k in ("results", "equivalence")},
                     command_line("benchmarks.step", argv), report["setup"], report["device"])
    return report


if __name__ == "__main__":
    main()

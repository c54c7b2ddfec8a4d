"""What the GPU will do, counted on the CPU: the CUDA code paths run here under an op recorder.

    python -m benchmarks.gpu_proxy [--json OUT] [--quick] [--no-compile]

No GPU needed. The CUDA code paths (`decide(cfg, cuda_paths=True)`: the capturable step from
static buffers, fused SGD on device learning rates; the static strong view) run on the CPU, and
`benchmarks/recorder.py` counts their aten ops. Printed and written to --json:
- syncs: host-sync ops (value reads, value-dependent shapes, tensors from Python data) per
  training step of each phase, per strong-view call of each policy, and over a whole
  tensor-pipeline epoch. Goal: 0 everywhere; each one would stall a GPU. (The DALI and FFCV
  batch assembly is checked the same way by tests/test_pipeline_syncs.py.)
- graph_breaks: `torch._dynamo.explain` of each phase's losses and each policy's view
  application. Goal: 0 (each would split a compiled or captured region).
- step_ops: one robust step (sevencnn, CIFAR-100, batch 128): every aten op the recorder sees
  (`recorded_aten_ops`, views included), and launches (`step_launches`): eager, and after
  `torch.compile`. Launches are what bind a batch-128 step on an H100; a captured CUDA graph
  replays them all with one launch.
- strong_view_per_batch: per policy, one 128-image 32x32 batch through the static view: aten
  ops, float64 ops, and bytes read + written (the sum over ops of input and output sizes).
  Goal: <= 0.4 GB.
- warmup_strong_view_ops: image ops of a warm-up epoch beyond a pipeline without a strong view
  (goal 0: an epoch whose loss reads no strong view builds none).
- view_apply_capturable: per policy, the static apply pass has no host sync and the same ops on
  the same shapes for other draws (what a CUDA graph replayed per chunk needs).
- blocking_copies: per pipeline (tensor, reference, dali, ffcv), copies to the device that would
  block the host on a GPU, per batch of a training epoch and a test pass (goal 0; None where the
  pipeline's extra is not installed).
- packed_step_ops: one robust step of K packed runs (act/pack: the nets' grouped twins, the loss
  math vmapped over the runs) at K = 1, 4, 8: aten ops, host syncs, and bytes against those of K
  runs' own steps. Goals: ops at K = 8 at most 1.3x those at K = 1 (one launch per op for all
  K runs); bytes at most 1.2x K runs alone; 0 syncs.
--quick: tinycnn and no compile, packs of 1 and 8 runs of batch 32 (what the tests run).
"""
from __future__ import annotations

import argparse
import importlib.util
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from act.config import load_config
from act.datasets.converted import read_converted
from act.method.registry import phase_losses
from act.run.build import prepare
from act.run.runtime import decide
from act.pack import step as packed
from act.step import engine
from benchmarks.pipelines import device_name, random_cifar, synthetic_files
from benchmarks.record import command_line, commit, write_record
from benchmarks.recorder import NO_TRAFFIC, CopyRecorder, OpRecorder, Record
from benchmarks.step import Setup, fused_context, make_nets, noisy_labels, synthetic_batches
from pipelines import build_pipeline
from pipelines.ops import policy
from pipelines.ops.slot import apply_static

BATCH, SIZE, CLASSES = 128, 32, 100
BYTES_GOAL = 0.4e9
PACKS = (1, 4, 8)  # runs per pack measured
PACKED_OPS_GOAL, PACKED_BYTES_GOAL = 1.3, 1.2  # ops at K=8 over K=1; bytes over K runs alone


def cifar_run(model: str, train: int = 1024, warmup_epochs: int = 1):
    """A CIFAR-100-shaped run on the CPU with the CUDA code paths."""
    cfg = load_config(None, ["data.name=cifar100n", "data.root=random", f"model.name={model}", "run.device=cpu",
                             f"optim.batch_size={BATCH}", f"optim.warmup_epochs={warmup_epochs}",
                             f"run.out_dir={tempfile.mkdtemp(prefix='act-proxy-')}", "pipeline.name=tensor"])
    return prepare(cfg, decide(cfg, cuda_paths=True), run_dir=Path(cfg.run.out_dir), source=random_cifar(train, 256, CLASSES))


def recorded(fn, *args) -> Record:
    with OpRecorder() as recorder:
        fn(*args)
    return recorder.record


def step_records(run) -> dict[str, Record]:
    """One full-batch step of each phase, after a first one that allocates buffers and optimiser state."""
    engine.set_lrs(run.ctx, 0.01, 0.08)
    batches = run.pipeline.train_batches(1)
    out = {}
    for phase, step in run.steps.items():
        run.ctx.set_epoch(1)
        step(next(batches), run.stats)
        out[phase] = recorded(step, next(batches), run.stats)
    return out


def dispatched_ops(step, batch, stats) -> int:
    """Top-level aten ops one call of `step` dispatches that do work (views and metadata left out),
    from the profiler: it sees the ops a compiled graph still calls, where a dispatch mode would
    make the compiled code fall back to eager."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(batch, stats)
    return sum(1 for e in prof.events() if e.name.startswith("aten::")
               and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
               and e.name.replace("::", ".") not in NO_TRAFFIC)


def step_launches(run) -> dict[str, int]:
    """Launches of one robust step: eager = the aten ops it dispatches; compiled = the fused kernels
    inductor generated for the step's graphs (forward and backward) + the aten ops the compiled
    step still dispatches (convolutions, matmuls, the two optimiser updates). Inductor's CPU
    backend fuses less than its GPU one, so the compiled figure here is an upper bound."""
    from torch._inductor import metrics

    batches = run.pipeline.train_batches(2)
    eager = engine.PhaseStep(run.ctx, engine.robust_losses, BATCH, compile=False, static_inputs=True)
    eager(next(batches), run.stats)
    out = {"eager": dispatched_ops(eager, next(batches), run.stats)}
    step = engine.PhaseStep(run.ctx, engine.robust_losses, BATCH, compile=True, static_inputs=True)
    torch._dynamo.reset()
    metrics.reset()
    step(next(batches), run.stats)  # compiles forward and backward
    out["compiled"] = metrics.generated_kernel_count + dispatched_ops(step, next(batches), run.stats)
    return out


def losses_graph_breaks(run) -> dict[str, int]:
    batch = next(run.pipeline.train_batches(1))
    out = {}
    for phase, losses in phase_losses().items():
        torch._dynamo.reset()
        out[f"losses.{phase}"] = torch._dynamo.explain(losses)(run.ctx, batch, run.stats.totals).graph_break_count
    return out


def view_figures(batch: int = BATCH) -> tuple[dict[str, int], dict[str, int], list[dict]]:
    """(syncs, graph breaks, per-batch figures) of each strong policy on the static (GPU) path."""
    images = torch.from_numpy(np.random.RandomState(0).randint(0, 256, (batch, 3, SIZE, SIZE), dtype=np.uint8))
    syncs, breaks, figures = {}, {}, []
    for name, apply in policy.POLICIES.items():
        apply(images, torch.Generator().manual_seed(1), True)  # builds the device's tables once (cached)
        record = recorded(apply, images, torch.Generator().manual_seed(0), True)
        torch._dynamo.reset()
        breaks[f"views.{name}"] = policy.static_graph_breaks(apply, images)
        syncs[f"chunk.{name}"] = record.total_syncs
        figures.append({"policy": name, "batch": batch, "image_size": SIZE, "ops": record.total_ops,
                        "float64_ops": record.float64_ops, "bytes": record.bytes})
    return syncs, breaks, figures


def warmup_strong_view_ops(run) -> int:
    """Image ops a warm-up epoch makes beyond those of a pipeline without any strong view: the cost
    of a strong view nobody reads (goal 0: warm-up epochs build none)."""
    p = run.pipeline
    weak_only = build_pipeline("tensor", p.source, p.noisy, batch_size=p.batch_size, device=p.device, seed=p.seed,
                               strong=False, static=True)
    counts = []
    for pipeline, strong in ((p, False), (weak_only, None)):
        with OpRecorder() as recorder:
            list(pipeline.train_batches(0, strong=strong))
        counts.append(recorder.record.image_ops)
    return counts[0] - counts[1]


def view_apply_capturable(batch: int = BATCH) -> dict[str, bool]:
    """Per policy: its static apply pass has no host sync and the same ops on the same shapes for
    two different draws (no value-dependent shape, no allocation sized on the host)."""
    images = torch.from_numpy(np.random.RandomState(0).randint(0, 256, (batch, 3, SIZE, SIZE), dtype=np.uint8))
    out = {}
    for name, view in policy.POLICIES.items():
        records = [recorded(apply_static, images, policy.DRAWS[view](images, torch.Generator().manual_seed(seed)))
                   for seed in (0, 1)]
        out[name] = records[0].total_syncs == 0 and records[0].shapes == records[1].shapes
    return out


def blocking_copies(name: str, scratch: Path) -> dict:
    """Copies to the device over a training epoch and a test pass of pipeline `name` on small data
    (the GPU's code paths on the CPU), and how many would block the host on a GPU, per batch."""
    path = None
    if name in ("tensor", "reference"):
        source = random_cifar(96, 32, classes=10)
    else:
        path = synthetic_files(24, Path(scratch) / name, fmt=name, shape=(48, 64), image_size=32)
        source = read_converted(path)
    p = build_pipeline(name, source, source.train.labels, batch_size=8, device=torch.device("cpu"), seed=0,
                       workers=0 if name == "reference" else 1, path=None if path is None else str(path),
                       test_batch_size=8, static=True)
    list(p.train_batches(1))  # set-up (device tables, loaders) outside the count
    with CopyRecorder() as recorder:
        batches = sum(1 for _ in p.train_batches(0)) + sum(1 for _ in p.test_batches())
    return {"batches": batches, "copies": recorder.copies, "blocking": recorder.blocking,
            "blocking_per_batch": recorder.blocking / batches}


def all_blocking_copies() -> dict[str, float | None]:
    """`blocking_copies` per batch of each pipeline (None where its extra is not installed)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="act-copies-") as scratch:
        for name, module in (("tensor", None), ("reference", None), ("dali", "nvidia.dali"), ("ffcv", "ffcv")):
            installed = module is None or importlib.util.find_spec(module) is not None
            out[name] = blocking_copies(name, Path(scratch))["blocking_per_batch"] if installed else None
    return out


def packed_step_ops(model: str, packs: tuple[int, ...] = PACKS, batch: int = BATCH) -> dict:
    """One robust step (CIFAR-100 shape) of a run alone and of packs of K runs (each run its own
    seed, labels and batch), recorded after a first step that sets up optimiser state. The op
    counts do not depend on the batch size; the tests take a smaller one."""
    def recorded_step(ctx, losses, batch, stats) -> Record:
        engine.set_lrs(ctx, 0.01, 0.08)
        engine.eager_step(ctx, losses, batch, 1, stats)
        return recorded(engine.eager_step, ctx, losses, batch, 1, stats)

    setups = [Setup(model, CLASSES, batch, torch.device("cpu"), samples=1024, seed=k) for k in range(max(packs))]
    contexts = [lambda s=s: fused_context(*make_nets(s), noisy_labels(s), CLASSES) for s in setups]
    batches = [synthetic_batches(s, 1, noisy_labels(s), seed=s.seed + 1)[0] for s in setups]
    alone = recorded_step(contexts[0](), engine.robust_losses, batches[0], engine.EpochStats(torch.device("cpu")))
    out = {"model": model, "batch": batch, "alone": {"ops": alone.total_ops, "bytes": alone.bytes}, "packs": []}
    for k in packs:
        ctx = packed.pack_contexts([make() for make in contexts[:k]])
        record = recorded_step(ctx, packed.robust_losses, packed.stack_batches(batches[:k]),
                               packed.PackStats(torch.device("cpu"), k))
        out["packs"].append({"runs": k, "ops": record.total_ops, "syncs": record.total_syncs, "bytes": record.bytes,
                             "bytes_over_runs_alone": record.bytes / (k * alone.bytes)})
    return out


def chunk_syncs(run) -> int:
    """Syncs over a whole tensor-pipeline epoch of the run (both views, static path)."""
    return recorded(lambda: list(run.pipeline.train_batches(0))).total_syncs


def measure(quick: bool = False, compile: bool = True) -> dict:
    run = cifar_run("tinycnn" if quick else "sevencnn")
    steps = step_records(run)
    syncs = {f"step.{phase}": r.total_syncs for phase, r in steps.items()}
    syncs["pipeline.tensor_epoch"] = chunk_syncs(run)
    view_syncs, view_breaks, views = view_figures()
    syncs.update(view_syncs)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit(),
        "device": device_name(torch.device("cpu")), "torch": torch.__version__, "model": run.cfg.model.name,
        "batch": BATCH,
        "syncs": syncs,
        "graph_breaks": {**losses_graph_breaks(run), **view_breaks},
        "step_ops": {"recorded_aten_ops": steps["robust"].total_ops,
                     **(step_launches(run) if compile and not quick else {"eager": None, "compiled": None})},
        "strong_view_per_batch": views,
        "warmup_strong_view_ops": warmup_strong_view_ops(run),
        "view_apply_capturable": view_apply_capturable(),
        "blocking_copies": all_blocking_copies(),
        "packed_step_ops": packed_step_ops(run.cfg.model.name, (1, PACKS[-1]), batch=32) if quick else
        packed_step_ops(run.cfg.model.name),
    }


def print_table(result: dict) -> None:
    print(f"CUDA code paths on the CPU ({result['model']}, batch {result['batch']}, torch {result['torch']})")
    print("host syncs:   " + ", ".join(f"{k} {v}" for k, v in result["syncs"].items()) + "   (goal 0)")
    print("graph breaks: " + ", ".join(f"{k} {v}" for k, v in result["graph_breaks"].items()) + "   (goal 0)")
    ops = result["step_ops"]
    print(f"robust step: {ops['recorded_aten_ops']} aten ops recorded" +
          (f"; launches: {ops['eager']} eager, {ops['compiled']} compiled (CPU inductor)"
           if ops["compiled"] is not None else ""))
    print(f"strong-view image ops in a warm-up epoch: {result['warmup_strong_view_ops']} (goal 0)")
    print("view apply pass capturable: " + ", ".join(f"{k} {v}" for k, v in result["view_apply_capturable"].items()))
    print("blocking copies per batch: " + ", ".join(f"{k} {'-' if v is None else v}"
                                                   for k, v in result["blocking_copies"].items()) + "   (goal 0)")
    p = result["packed_step_ops"]
    print(f"packed robust step ({p['model']}, batch {p['batch']}): alone {p['alone']['ops']} ops; " + ", ".join(
        f"K={k['runs']} {k['ops']} ops, {k['syncs']} syncs, bytes {k['bytes_over_runs_alone']:.3f}x K runs alone"
        for k in p["packs"]) + f"   (goal: K={PACKS[-1]} <= {PACKED_OPS_GOAL}x K=1 ops, <= {PACKED_BYTES_GOAL}x bytes)")
    for v in result["strong_view_per_batch"]:
        print(f"strong view {v['policy']}: {v['ops']} ops, {v['float64_ops']} float64, "
              f"{v['bytes'] / 1e9:.3f} GB per {v['batch']}-image batch (goal <= {BYTES_GOAL / 1e9:.1f} GB)")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--quick", action="store_true",
                        help="tinycnn, no compile, packs of 1 and 8 at batch 32: what the tests run")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled op count (a minute on 2 cores)")
    args = parser.parse_args(argv)
    result = measure(quick=args.quick, compile=not args.no_compile)
    print_table(result)
    if args.json:
        header = ("date", "commit", "torch", "device", "model", "batch")
        write_record(args.json, "gpu_proxy", {k: v for k, v in result.items() if k not in header},
                     command_line("benchmarks.gpu_proxy", argv), {"model": result["model"], "batch": result["batch"]},
                     result["device"])
    return result


if __name__ == "__main__":
    main()

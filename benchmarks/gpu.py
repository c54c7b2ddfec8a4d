"""Everything a first GPU session needs to know, in one budgeted command.

    pip install --no-deps --no-build-isolation -e .    # on the GPU machine
    python -m benchmarks.gpu [--budget-s 480] [--out DIR] [--train 50000] [--test 10000]
    python -m benchmarks.gpu --smoke                   # on the CPU: checks the command

Parts, most important first; each runs only if its estimate fits in what is left of the budget
(GPU time), and the record is rewritten after each, so a killed run keeps what it measured. The
budget decides which parts start; a part may end past it by its own length, so under a hard
limit of L seconds give `--budget-s` about L - 120:
1. cuda_tests: `pytest -m cuda` (ops on CUDA = CPU byte for byte, graph replay = eager step,
   no host sync over a graphed epoch, a resumed graphed run).
2. capture_race: the `reference` pipeline with 4 workers (a pin-memory thread making CUDA calls)
   and run.cuda_graph=true, a warm-up and a robust epoch: capture must not race the loader.
3. syncs: a graphed robust epoch (tensor pipeline) under `torch.cuda.set_sync_debug_mode("warn")`:
   the synchronising calls of the training steps (goal 0), of the statistics read (1 expected)
   and of the evaluation, with where the first ones come from.
4. kernels: a profiler census of the top kernels by GPU time over graphed robust steps.
5. step_alone: `benchmarks.step` (the fused step on device-resident batches, no pipeline).
6. pipeline_alone: the tensor pipeline's batches (both views), images/s.
7. epochs: CIFAR-100N-shaped runs (random uint8 data, sevencnn, batch 128, tensor pipeline, real
   AutoAugment strong view), each variant a fresh run of a warm-up and two robust epochs:
   eager / compile / graph / compile + graph; the last robust epoch, train and test apart,
   with the GPU utilisation nvidia-smi sampled during the run.
8. packed_epochs: packs of 1, 3 and 9 runs (act train --pack) against the same runs one after
   another: each pack's robust epoch beside K times one run's alone.
It prints what it skipped and why. Writes benchmarks/results/gpu-<device>-<date>.json and
prints the epochs against the public code (BASELINES.md: 27 s per epoch on an H100).
`--smoke` runs on the CPU, tiny sizes and tinycnn, the parts that can run there (capture_race
and syncs without capture or sync counting), names the parts that need CUDA, and writes its
record where --out says; its figures mean nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from act.config import load_config
from act.run.build import prepare
from act.run.loop import loop, train_batches, train_epoch
from act.step import engine
from act.step.graphs import failure_text
from benchmarks.epoch_time import UtilisationSampler
from benchmarks.pipelines import device_name, measure, random_cifar
from benchmarks.record import command_line, commit, write_record

RESULTS = Path(__file__).resolve().parent / "results"
PUBLIC = {"H100": 27.0, "RTX 3090": 40.0}  # seconds per robust epoch of the public code (BASELINES.md)
VARIANTS = {
    "eager": ("run.compile=false", "run.cuda_graph=false"),
    "compile": ("run.compile=true", "run.cuda_graph=false"),
    "graph": ("run.compile=false", "run.cuda_graph=true"),
    "compile+graph": ("run.compile=true", "run.cuda_graph=true"),
}


@dataclass
class Setting:
    """What every part reads: device, sizes, model, where scratch run folders go."""

    device: str
    train: int
    test: int
    model: str
    smoke: bool
    scratch: str
    variants: list[str]

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"


def cifar_run(s: Setting, *overrides: str, train: int | None = None, pipeline: str = "tensor"):
    """A CIFAR-100N-shaped run on random data: one warm-up epoch, then robust ones."""
    cfg = load_config(None, ["data.name=cifar100n", "data.root=random", f"model.name={s.model}",
                             f"run.device={s.device}", "optim.batch_size=128", "optim.warmup_epochs=1",
                             "optim.epochs=3", "optim.lr_decay=cosine:1,5e-4,3", f"pipeline.name={pipeline}",
                             "run.progress=false", f"run.out_dir={tempfile.mkdtemp(dir=s.scratch)}", *overrides])
    return prepare(cfg, source=random_cifar(train or s.train, s.test, classes=100))


def cuda_tests(s: Setting) -> dict:
    """`pytest -m cuda` in a subprocess: its summary line and exit code."""
    if importlib.util.find_spec("pytest") is None:
        return {"exit_code": None, "summary": "not run: pytest is not installed"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    lines = [line for line in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
    print(proc.stdout[-3000:] if proc.returncode else (lines[-1] if lines else proc.stdout[-500:]))
    return {"exit_code": proc.returncode, "summary": lines[-1] if lines else None,
            "failures": [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))][:20]}


def capture_race(s: Setting) -> dict:
    """Two epochs of the reference pipeline with 4 workers and CUDA graphs required (true): a
    capture that races the pin-memory thread stops the run with one line."""
    graphs = "run.cuda_graph=true" if s.cuda else "run.cuda_graph=auto"
    run = cifar_run(s, graphs, "pipeline.workers=4", "optim.epochs=2", train=min(s.train, 4096),
                    pipeline="reference")
    with open(Path(run.dir) / "console.txt", "w") as console:
        summary = loop(run, out=console)
    return {"epochs": summary["epochs"], "cuda_graph": summary["cuda_graph"], "workers": 4}


def sync_warnings(fn: Callable[[], object]) -> tuple[int, Counter]:
    """Synchronising CUDA calls `fn` makes (set_sync_debug_mode("warn")), and where from."""
    if not torch.cuda.is_available():
        fn()
        return 0, Counter()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    return len(syncs), Counter(f"{Path(w.filename).name}:{w.lineno}" for w in syncs)


def syncs(s: Setting) -> dict:
    """A graphed robust epoch's synchronising calls: steps, statistics read, evaluation apart."""
    run = cifar_run(s, "run.cuda_graph=true" if s.cuda else "run.cuda_graph=auto", train=min(s.train, 10240))
    for epoch in (0, 1):  # warm-up epoch, first robust epoch (capture)
        train_epoch(run, epoch, False)
    engine.set_lrs(run.ctx, run.rtm_plan[2], run.ntm_plan[2])
    run.ctx.set_epoch(2)
    run.stats.reset()
    step = run.steps["robust"]
    steps, where = sync_warnings(lambda: [step(b, run.stats) for b in train_batches(run, 2)])
    read, _ = sync_warnings(run.stats.read)
    evaluate, _ = sync_warnings(lambda: engine.evaluate([run.ctx.rtm, run.ctx.ntm], run.pipeline.test_batches(),
                                                        run.ctx.amp_dtype))
    return {"counted": s.cuda, "train_steps": steps, "stats_read": read, "evaluate": evaluate,
            "where": dict(where.most_common(8)), "step_mode": step.mode, "views": run.pipeline.view_graphs()}


def kernels(s: Setting, steps: int = 40) -> dict:
    """The top kernels by GPU time over `steps` graphed robust steps (batches made outside the profile)."""
    from torch.profiler import ProfilerActivity, profile

    run = cifar_run(s, "run.cuda_graph=true", train=min(s.train, 10240))
    for epoch in (0, 1):
        train_epoch(run, epoch, False)
    batches = [b for _, b in zip(range(steps), run.pipeline.train_batches(2, strong=True))]
    step = run.steps["robust"]
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for batch in batches:
            step(batch, run.stats)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    events.sort(key=lambda e: e.device_time_total, reverse=True)
    total = sum(e.device_time_total for e in events)
    return {"steps": len(batches), "gpu_ms_per_step": total / 1000 / max(1, len(batches)),
            "top": [{"kernel": e.key[:120], "gpu_ms": e.device_time_total / 1000, "calls": e.count,
                     "share": e.device_time_total / total if total else None} for e in events[:15]]}


def step_alone(s: Setting) -> dict:
    from benchmarks import step

    report = step.main(["--device", s.device, "--model", s.model, "--steps", "10" if s.smoke else "100",
                        "--equiv-steps", "0", "--samples", str(s.train)])
    return {"results": report["results"]}


def pipeline_alone(s: Setting) -> dict:
    return measure("tensor", random_cifar(s.train, s.test, classes=100), torch.device(s.device), 128,
                   batches=10 if s.smoke else 300, warmup=2 if s.smoke else 20, workers=0)


def time_variant(s: Setting, name: str) -> dict:
    """One fresh run of the variant: a warm-up epoch and two robust ones; the last robust epoch timed."""
    run = cifar_run(s, *VARIANTS[name])
    sampler = UtilisationSampler() if s.cuda else None
    if sampler:
        sampler.start()
    start = time.perf_counter()
    with open(Path(run.dir) / "console.txt", "w") as console:
        summary = loop(run, out=console)
    wall = time.perf_counter() - start
    if sampler:
        sampler.stopped.set()
    last = run.history[-1]
    return {"variant": name, "robust_epoch_seconds": last["epoch_seconds"], "train_seconds": last["train_seconds"],
            "test_seconds": last["epoch_seconds"] - last["train_seconds"], "images_per_s": last["images_per_s"],
            "warmup_epoch_seconds": run.history[0]["epoch_seconds"],
            "first_robust_epoch_seconds": run.history[1]["epoch_seconds"], "wall_seconds": wall,
            "gpu_util_mean": sampler.mean() if sampler else None, "rtm_test_acc": last["rtm_test_acc"],
            "cuda_graph": summary["cuda_graph"]}


def epochs(s: Setting, budget: "Budget") -> list[dict]:
    out = []
    for name in s.variants:
        if not budget.fits(f"epochs.{name}", 75 if s.cuda else 5):
            continue
        print(f"timing {name} ...", flush=True)
        out.append(guarded(lambda: time_variant(s, name)))
    return out


def packed_epochs(s: Setting, packs: tuple[int, ...] | None = None) -> dict:
    """Packs of K runs (act train --pack; seeds 0..K-1 on random CIFAR-100N-shaped arrays, the model
    at batch 128, compile and graphs as run.*=auto decides) against the same runs one after another:
    each pack's last robust epoch beside K times one run's alone (one run measured: the K runs
    alone differ only in seed, so each costs the same)."""
    import numpy as np
    import yaml

    from act.pack.run import train_pack

    packs = packs or ((1, 2) if s.smoke else (1, 3, 9))
    from act.run.loop import train

    rng = np.random.default_rng(0)
    data = Path(tempfile.mkdtemp(dir=s.scratch)) / "cifar.npz"
    labels = [np.arange(n) % 100 for n in (s.train, s.test)]  # every class present
    np.savez(data, x=rng.integers(0, 256, (s.train, 32, 32, 3), dtype=np.uint8), y=rng.permutation(labels[0]),
             x_test=rng.integers(0, 256, (s.test, 32, 32, 3), dtype=np.uint8), y_test=rng.permutation(labels[1]))
    base = ["data.name=arrays", f"data.root={data}", f"model.name={s.model}", f"run.device={s.device}",
            "optim.batch_size=128", "optim.warmup_epochs=1", "optim.epochs=3", "optim.lr_decay=cosine:1,5e-4,3",
            "run.progress=false", "run.plots=false"]
    out = Path(tempfile.mkdtemp(dir=s.scratch))

    def last_robust(folder: Path) -> float:
        return json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])["epoch_seconds"]

    with open(out / "console.txt", "w") as console:
        train(load_config(None, [*base, f"run.out_dir={out}", "run.name=alone"]), out=console)
        alone = last_robust(out / "alone")
        result = {"alone_robust_epoch_s": alone, "packs": []}
        for k in packs:
            runs = [{"overrides": [*base, f"run.seed={i}", f"run.out_dir={out}", f"run.name=pack{k}-{i}"]}
                    for i in range(k)]
            (out / f"pack{k}.yaml").write_text(yaml.safe_dump({"runs": runs}))
            start = time.perf_counter()
            train_pack(out / f"pack{k}.yaml", out=console)
            epoch = max(last_robust(out / f"pack{k}-{i}") for i in range(k))
            result["packs"].append({"k": k, "robust_epoch_s": epoch, "one_after_another_s": k * alone,
                                    "speedup": k * alone / epoch if epoch else None,
                                    "wall_s": time.perf_counter() - start})
            print(f"  pack of {k}: {epoch:.2f} s per robust epoch; alone one after another {k * alone:.2f} s",
                  flush=True)
    return result


@dataclass
class Part:
    name: str
    run: Callable
    estimate_s: float  # on an H100 at full size
    cuda_only: bool = False


PARTS = [
    Part("cuda_tests", cuda_tests, 150, cuda_only=True),
    Part("capture_race", capture_race, 75),  # compile (run.compile=auto) of two phases, then capture
    Part("syncs", syncs, 60),
    Part("kernels", kernels, 60, cuda_only=True),
    Part("step_alone", step_alone, 60),
    Part("pipeline_alone", pipeline_alone, 20),
]
LATE_PARTS = [  # after the epoch variants: what a first contact needs less
    Part("packed_epochs", packed_epochs, 150),
]


class Budget:
    """Seconds left of the budget, and the parts left out for lack of them."""

    def __init__(self, seconds: float):
        self.end, self.skipped = time.perf_counter() + seconds, []

    def left(self) -> float:
        return self.end - time.perf_counter()

    def fits(self, name: str, estimate: float) -> bool:
        if self.left() >= estimate:
            return True
        self.skipped.append(f"{name}: about {estimate:.0f} s needed, {max(0.0, self.left()):.0f} s left")
        print(f"skipped {self.skipped[-1]}", flush=True)
        return False


def guarded(fn: Callable[[], object]) -> object:
    """A part's figures, or its error in one line: one failing part must not cost the others."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - recorded, and the next part runs
        print(f"  failed: {failure_text(exc)}", flush=True)
        return {"error": failure_text(exc)}


def print_table(result: dict) -> None:
    print(f"\n{result['device']} | torch {result['torch']} | {result['train']} train / {result['test']} test images")
    if result["epochs"]:
        print(f"{'variant':>14} {'epoch s':>8} {'train s':>8} {'test s':>7} {'img/s':>8} {'GPU %':>6}")
    for v in result["epochs"]:
        if "error" in v:
            continue
        util = "-" if v["gpu_util_mean"] is None else f"{v['gpu_util_mean']:.0f}"
        print(f"{v['variant']:>14} {v['robust_epoch_seconds']:8.2f} {v['train_seconds']:8.2f} {v['test_seconds']:7.2f} "
              f"{v['images_per_s']:8.0f} {util:>6}")
    timed = [v["robust_epoch_seconds"] for v in result["epochs"] if "error" not in v]
    for device, seconds in PUBLIC.items() if result["cuda"] and timed else ():
        print(f"public ACT code on an {device}: {seconds:.0f} s per epoch -> best here {min(timed):.2f} s "
              f"({seconds / min(timed):.1f}x; CIFAR-100 has 50,000 images: compare full-size runs only)")
    if result["skipped"]:
        print("skipped: " + "; ".join(result["skipped"]))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=480.0, help="GPU seconds for all parts (default 480)")
    parser.add_argument("--train", type=int, default=50_000, help="training images (CIFAR-100 has 50,000)")
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the command, not speed")
    parser.add_argument("--out", default=str(RESULTS), help="folder of the JSON record")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        parser.error("no CUDA device here: this command measures a GPU (use --smoke to check it on the CPU)")
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: {', '.join(unknown)} not among {', '.join(VARIANTS)}")
    device = "cuda" if cuda and not args.smoke else "cpu"
    variants = args.variants.split(",") if device == "cuda" else ["eager"]  # capture and compile need a GPU here
    s = Setting(device=device, train=512 if args.smoke else args.train, test=256 if args.smoke else args.test,
                model="tinycnn" if args.smoke else "sevencnn", smoke=args.smoke,
                scratch=tempfile.mkdtemp(prefix="act-gpu-"), variants=variants)
    budget = Budget(args.budget_s)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit(),
              "device": device_name(torch.device(device)), "cuda": s.cuda, "torch": torch.__version__,
              "train": s.train, "test": s.test, "budget_s": args.budget_s, "skipped": budget.skipped, "epochs": []}
    slug = re.sub(r"[^A-Za-z0-9]+", "-", result["device"]).strip("-").lower()
    path = Path(args.out) / f"gpu-{slug}-{result['date'][:10]}.json"
    for part in PARTS:
        if part.cuda_only and not s.cuda:
            budget.skipped.append(f"{part.name}: needs CUDA")
            continue
        if part.name == "cuda_tests" and args.skip_tests:
            budget.skipped.append("cuda_tests: --skip-tests")
            continue
        if budget.fits(part.name, part.estimate_s if s.cuda else 5):
            print(f"{part.name} ...", flush=True)
            result[part.name] = guarded(lambda: part.run(s))
            record(path, result, argv, s)
    result["epochs"] = epochs(s, budget)
    record(path, result, argv, s)
    for part in LATE_PARTS:
        if budget.fits(part.name, part.estimate_s if s.cuda else 5):
            print(f"{part.name} ...", flush=True)
            result[part.name] = guarded(lambda: part.run(s))
            record(path, result, argv, s)
    print_table(result)
    print(f"written to {path}")
    return result


def record(path: Path, result: dict, argv: list[str] | None, s: Setting) -> None:
    header = ("date", "commit", "torch", "device")
    write_record(path, "gpu", {k: v for k, v in result.items() if k not in header}, command_line("benchmarks.gpu", argv),
                 {"train": s.train, "test": s.test, "variants": s.variants, "model": s.model}, result["device"])


if __name__ == "__main__":
    main()

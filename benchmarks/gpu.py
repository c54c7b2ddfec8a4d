"""Everything a first run on a GPU machine needs to know, in one budgeted command.

    pip install --no-deps --no-build-isolation -e .    # on the GPU machine
    python -m benchmarks.gpu --budget-s 400            # under a hard limit of about 540 s
    python -m benchmarks.gpu --budget-s 400 --plan     # what that budget admits, run nothing
    python -m benchmarks.gpu --smoke                   # on the CPU: checks the command

The budget (seconds) counts from the start of the process, imports and CUDA start included.
Parts run in this order, each only if its estimate fits in what is left (a part that does not fit
is skipped and a later, shorter one may still run); a part may end past the budget by its own
overrun, so under a hard limit of L seconds give `--budget-s` about L - 120:
1. epochs.<variant>: CIFAR-100N-shaped runs (random uint8 data, sevencnn, batch 128, the tensor
   pipeline with the real AutoAugment strong view), one fresh run per variant, in the order
   compile+graph, eager, graph, compile: a warm-up epoch and a robust one (compile and capture
   happen there), then a timed robust epoch, train and test apart, with the GPU utilisation
   nvidia-smi sampled during that epoch only.
2. syncs: graphed robust steps under `torch.cuda.set_sync_debug_mode("warn")`: the synchronising
   calls of the training steps (goal 0), of the statistics read (1 expected) and of the
   evaluation, with where the first ones come from.
3. kernels: a profiler census of the top kernels by GPU time over graphed robust steps.
4. cuda_checks: tests/cuda_checks.py (no pytest needed), each check in a process of its own under
   a time limit the budget sets; a check that hangs is recorded as hung and the next one runs.
5. capture_race: the `reference` pipeline with 4 workers (a pin-memory thread making CUDA calls)
   and run.cuda_graph=true: capture must not race the loader.
6. step_alone: `benchmarks.step` (the fused step on device-resident batches, no pipeline).
7. pipeline_alone: the tensor pipeline's batches (both views), images/s.
8. packed_epochs: benchmarks/packs.py (K runs one after another, K processes at once, a pack of K).

Every part trains on one data size (--train, the memory bank's length) with a cap on its steps
where it needs fewer, so the step compiles to the same shapes and torch's compile caches serve the
later parts. Each part, each epoch variant and each pack size is printed and recorded the moment it
ends, in benchmarks/results/gpu-<device>-<UTC date and time>.json (written whole each time,
atomically), so a run killed at its time limit keeps everything it measured. The end prints the
epochs against the public code (BASELINES.md: 27 s per robust epoch on an H100).

`--smoke` runs on the CPU at tiny sizes with tinycnn, the parts that can run there (the eager
epoch variant; syncs and capture_race without capture or sync counting), names the parts that
need CUDA, and writes its record where --out says; its figures mean nothing.
"""
from __future__ import annotations

import time

STARTED = time.monotonic()  # `python -m benchmarks.gpu`: the budget counts from here, imports and CUDA start too

import argparse  # noqa: E402 - after the clock starts
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from itertools import islice  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import torch  # noqa: E402

from act.config import load_config  # noqa: E402
from act.graphs import failure_text  # noqa: E402
from act.run.build import Run, prepare  # noqa: E402
from act.run.loop import begin_epoch, train_batches, train_epoch  # noqa: E402
from act.run.records import graph_modes  # noqa: E402
from act.run.runtime import decide  # noqa: E402
from act.step import engine  # noqa: E402
from benchmarks import packs  # noqa: E402
from benchmarks.epoch_time import UtilisationSampler  # noqa: E402
from benchmarks.pipelines import device_name, measure, random_cifar  # noqa: E402
from benchmarks.record import command_line, commit, write_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PUBLIC = {"H100": 27.0, "RTX 3090": 40.0}  # seconds per robust epoch of the public code (BASELINES.md)
VARIANTS = {  # in the order they run: what the command exists for first
    "compile+graph": ("run.compile=true", "run.cuda_graph=true"),
    "eager": ("run.compile=false", "run.cuda_graph=false"),
    "graph": ("run.compile=false", "run.cuda_graph=true"),
    "compile": ("run.compile=true", "run.cuda_graph=false"),
}
STARTUP_S = 30.0  # imports, CUDA start and the first random data set, on a GPU host (what --plan assumes)
CAPPED_STEPS = 20  # steps per phase where a part only needs the step compiled and captured
CHECK_LIMIT_S = 120.0  # the longest one CUDA check may take before it counts as hung
MIN_CHECK_S = 10.0  # a check is not started with less than this left of the budget


@dataclass
class Setting(packs.Setting):
    """What every part reads: device, sizes, model, where scratch run folders go (packs.Setting),
    and the epoch variants to time."""

    variants: list[str]


class Budget:
    """Seconds left of the budget, on `clock` (time.monotonic; tests give a fake one), counted
    from `start`; the parts left out for lack of them."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic, start: float | None = None):
        self.clock = clock
        self.end = (clock() if start is None else start) + seconds
        self.skipped: list[str] = []

    def left(self) -> float:
        return self.end - self.clock()

    def fits(self, name: str, estimate: float) -> bool:
        if self.left() >= estimate:
            return True
        self.skipped.append(f"{name}: about {estimate:.0f} s needed, {max(0.0, self.left()):.0f} s left")
        print(f"skipped {self.skipped[-1]}", flush=True)
        return False


@dataclass
class Session:
    """One run of the command: its setting, budget, the result so far and where it is recorded."""

    s: Setting
    budget: Budget
    result: dict
    path: Path
    argv: list[str] | None = None
    check_timeout: Callable[[], float] = field(default=lambda: CHECK_LIMIT_S)

    def save(self, key: str, value) -> None:
        """`value` under `key` in the result, and the record rewritten: nothing measured is lost."""
        self.result[key] = value
        self.record()

    def record(self) -> None:
        header = ("date", "commit", "torch", "device")
        write_record(self.path, "gpu", {k: v for k, v in self.result.items() if k not in header},
                     command_line("benchmarks.gpu", self.argv),
                     {"train": self.s.train, "test": self.s.test, "variants": self.s.variants, "model": self.s.model},
                     self.result["device"])


def cifar_run(s: Setting, *overrides: str, pipeline: str = "tensor") -> Run:
    """A CIFAR-100N-shaped run on random data (s.train images, the size every part uses): one
    warm-up epoch, then robust ones."""
    cfg = load_config(None, ["data.name=cifar100n", "data.root=random", f"model.name={s.model}",
                             f"run.device={s.device}", "optim.batch_size=128", "optim.warmup_epochs=1",
                             "optim.epochs=3", "optim.lr_decay=cosine:1,5e-4,3", f"pipeline.name={pipeline}",
                             "run.progress=false", f"run.out_dir={tempfile.mkdtemp(dir=s.scratch)}", *overrides])
    return prepare(cfg, decide(cfg), source=random_cifar(s.train, s.test, classes=100))


def run_steps(run: Run, epoch: int, steps: int | None) -> None:
    """The first `steps` steps of `epoch` (all of them with None), without its test pass."""
    step = begin_epoch(run, epoch)
    for batch in islice(train_batches(run, epoch), steps):
        step(batch, run.stats)


def warm(run: Run, steps: int = CAPPED_STEPS) -> None:
    """The first steps of the warm-up epoch and of the first robust one: each phase compiled and captured."""
    for epoch in (0, 1):
        run_steps(run, epoch, steps)


def time_variant(session: Session, name: str) -> dict:
    """One fresh run of the variant: the warm-up epoch and a robust one (compile, capture), then a
    robust epoch timed, with the GPU utilisation sampled over that epoch alone."""
    s = session.s
    run = cifar_run(s, *VARIANTS[name])
    start = time.perf_counter()
    first = [train_epoch(run, epoch, False) for epoch in (0, 1)]
    sampler = UtilisationSampler() if s.cuda else None
    if sampler:
        sampler.start()
    last = train_epoch(run, 2, False)
    if sampler:
        sampler.stopped.set()
        sampler.join(timeout=10)
    timed = {"variant": name, "robust_epoch_seconds": last["epoch_seconds"], "train_seconds": last["train_seconds"],
             "test_seconds": last["epoch_seconds"] - last["train_seconds"], "images_per_s": last["images_per_s"],
             "warmup_epoch_seconds": first[0]["epoch_seconds"],
             "first_robust_epoch_seconds": first[1]["epoch_seconds"], "wall_seconds": time.perf_counter() - start,
             "gpu_util_mean": sampler.mean() if sampler else None,
             "gpu_util_samples": len(sampler.samples) if sampler else 0, "rtm_test_acc": last["rtm_test_acc"],
             "cuda_graph": graph_modes(run), "compiled": engine.compile_modes(run.steps)}
    print_variant(timed)
    return timed


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


def syncs(session: Session, steps: int = 50) -> dict:
    """`steps` graphed robust steps' synchronising calls; the statistics read and evaluation apart."""
    s = session.s
    run = cifar_run(s, "run.cuda_graph=true" if s.cuda else "run.cuda_graph=auto")
    warm(run)
    step = begin_epoch(run, 2)
    batches = islice(train_batches(run, 2), steps)
    counted, where = sync_warnings(lambda: [step(b, run.stats) for b in batches])
    read, _ = sync_warnings(run.stats.read)
    evaluate, _ = sync_warnings(lambda: engine.evaluate([run.ctx.rtm, run.ctx.ntm], run.pipeline.test_batches(),
                                                        run.ctx.amp_dtype))
    return {"counted": s.cuda, "steps": steps, "train_steps": counted, "stats_read": read, "evaluate": evaluate,
            "where": dict(where.most_common(8)), "step_mode": step.mode, "views": run.pipeline.view_graphs()}


def kernels(session: Session, steps: int = 40) -> dict:
    """The top kernels by GPU time over `steps` graphed robust steps (batches made outside the profile)."""
    from torch.profiler import ProfilerActivity, profile

    run = cifar_run(session.s, "run.cuda_graph=true")
    warm(run)
    step = begin_epoch(run, 2)
    batches = list(islice(train_batches(run, 2), steps))
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for batch in batches:
            step(batch, run.stats)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    events.sort(key=lambda e: e.device_time_total, reverse=True)
    total = sum(e.device_time_total for e in events)
    return {"steps": len(batches), "step_mode": step.mode, "gpu_ms_per_step": total / 1000 / max(1, len(batches)),
            "top": [{"kernel": e.key[:120], "gpu_ms": e.device_time_total / 1000, "calls": e.count,
                     "share": e.device_time_total / total if total else None} for e in events[:15]]}


def check_names() -> list[str]:
    from tests.cuda_checks import CHECKS

    return list(CHECKS)


def check_command(name: str, scratch: str) -> list[str]:
    return [sys.executable, "-m", "tests.cuda_checks", name, tempfile.mkdtemp(dir=scratch)]


def run_check(name: str, timeout: float, scratch: str) -> dict:
    """One CUDA check in a process of its own: passed, failed (with its error) or hung (no result
    within `timeout` seconds: the process is killed and the command goes on)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(check_command(name, scratch), capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"result": "hung", "seconds": time.perf_counter() - start,
                "error": f"no result within {timeout:.0f} s; the check was killed"}
    seconds = time.perf_counter() - start
    if proc.returncode == 0:
        return {"result": "passed", "seconds": seconds}
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    return {"result": "failed", "seconds": seconds, "exit_code": proc.returncode, "error": lines[-1] if lines else "",
            "tail": lines[-15:]}


def cuda_checks(session: Session) -> dict:
    """tests/cuda_checks.py, each check under min(its limit, what is left of the budget)."""
    out: dict[str, dict] = {}
    for name in check_names():
        left = session.budget.left()
        if left < MIN_CHECK_S:
            out[name] = {"result": "not run", "error": f"{max(0.0, left):.0f} s of the budget left"}
            continue
        out[name] = run_check(name, min(session.check_timeout(), left), session.s.scratch)
        print(f"  {name}: {out[name]['result']} ({out[name]['seconds']:.0f} s)"
              + (f": {out[name]['error']}" if "error" in out[name] else ""), flush=True)
        session.save("cuda_checks", out)
    return out


def capture_race(session: Session) -> dict:
    """Steps of the reference pipeline with 4 workers and CUDA graphs required (true), capture
    included: a capture that races the pin-memory thread stops the run with one line."""
    s = session.s
    run = cifar_run(s, "run.cuda_graph=true" if s.cuda else "run.cuda_graph=auto", "pipeline.workers=4",
                    pipeline="reference")
    warm(run)
    return {"steps_per_phase": CAPPED_STEPS, "cuda_graph": graph_modes(run), "workers": 4}


def step_alone(session: Session) -> dict:
    from benchmarks import step

    s = session.s
    steps = ["--steps", "3", "--warmup-steps", "1"] if s.smoke else ["--steps", "100"]
    report = step.main(["--device", s.device, "--model", s.model, *steps, "--equiv-steps", "0",
                        "--samples", str(s.train)])
    return {"results": report["results"]}


def pipeline_alone(session: Session) -> dict:
    s = session.s
    return measure("tensor", random_cifar(s.train, s.test, classes=100), torch.device(s.device), 128,
                   batches=10 if s.smoke else 300, warmup=2 if s.smoke else 20, workers=0)


def packed_epochs(session: Session) -> dict:
    return packs.packed_epochs(session.s, lambda partial: session.save("packed_epochs", partial))


@dataclass
class Part:
    name: str
    run: Callable[[Session], object]
    estimate_s: float  # on an H100 at full size, compile included where the part compiles
    cuda_only: bool = False
    cpu_estimate_s: float = 5.0  # --smoke


def variant_part(name: str, estimate_s: float) -> Part:
    return Part(f"epochs.{name}", lambda session: time_variant(session, name), estimate_s)


# Estimates: never measured yet on a GPU; the first compile of both nets' two phases is the
# largest (30-60 s each on a GPU host), later compiling parts hit torch's caches.
PARTS = [
    variant_part("compile+graph", 150),
    variant_part("eager", 60),
    variant_part("graph", 60),
    variant_part("compile", 75),
    Part("syncs", syncs, 40),
    Part("kernels", kernels, 40, cuda_only=True),
    Part("cuda_checks", cuda_checks, 150, cuda_only=True),
    Part("capture_race", capture_race, 60),
    Part("step_alone", step_alone, 60),
    Part("pipeline_alone", pipeline_alone, 20),
    Part("packed_epochs", packed_epochs, 180),
]


def applicable(s: Setting, skip_checks: bool) -> list[tuple[Part, str | None]]:
    """Each part with the reason it cannot run here (None: it can)."""
    out = []
    for part in PARTS:
        why = None
        if part.name.startswith("epochs.") and part.name.removeprefix("epochs.") not in s.variants:
            continue
        if part.cuda_only and not s.cuda:
            why = "needs CUDA"
        elif part.name == "cuda_checks" and skip_checks:
            why = "--skip-checks"
        out.append((part, why))
    return out


def estimate(part: Part, s: Setting) -> float:
    return part.estimate_s if s.cuda else part.cpu_estimate_s


def plan(s: Setting, budget_s: float, skip_checks: bool, startup_s: float) -> list[tuple[str, float, str | None]]:
    """(part, estimate, None if the budget admits it else why not), in the order they run, when
    the start takes `startup_s` and every part takes its estimate."""
    left, out = budget_s - startup_s, []
    for part, why in applicable(s, skip_checks):
        seconds = estimate(part, s)
        if why is None and seconds > left:
            why = f"about {seconds:.0f} s needed, {max(0.0, left):.0f} s left"
        if why is None:
            left -= seconds
        out.append((part.name, seconds, why))
    return out


def print_plan(rows: list[tuple[str, float, str | None]], budget_s: float, startup_s: float) -> None:
    print(f"budget {budget_s:.0f} s, of which about {startup_s:.0f} s imports and CUDA start; in order:")
    for name, seconds, why in rows:
        note = "" if why is None else f"  ({why})"
        print(f"  {'runs' if why is None else 'skips':5} {name:22} ~{seconds:4.0f} s{note}")
    admitted = sum(seconds for _, seconds, why in rows if why is None)
    print(f"estimated total {startup_s + admitted:.0f} s")


def run_parts(session: Session, skip_checks: bool) -> None:
    """Each applicable part in order, when its estimate fits; each recorded the moment it ends."""
    s, budget = session.s, session.budget
    for part, why in applicable(s, skip_checks):
        if why is not None:
            budget.skipped.append(f"{part.name}: {why}")
            continue
        if not budget.fits(part.name, estimate(part, s)):
            continue
        print(f"{part.name} ...", flush=True)
        value = guarded(lambda: part.run(session))
        if part.name.startswith("epochs."):
            session.result["epochs"].append(value)
            session.record()
        else:
            session.save(part.name, value)


def guarded(fn: Callable[[], object]) -> object:
    """A part's figures, or its error in one line: one failing part must not cost the others."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - recorded, and the next part runs
        print(f"  failed: {failure_text(exc)}", flush=True)
        return {"error": failure_text(exc)}


def print_variant(v: dict) -> None:
    util = "" if v["gpu_util_mean"] is None else f", GPU {v['gpu_util_mean']:.0f}% busy"
    print(f"  {v['variant']}: robust epoch {v['robust_epoch_seconds']:.2f} s (train {v['train_seconds']:.2f} s, "
          f"test {v['test_seconds']:.2f} s, {v['images_per_s']:.0f} img/s{util})", flush=True)


def print_table(result: dict) -> None:
    print(f"\n{result['device']} | torch {result['torch']} | {result['train']} train / {result['test']} test images")
    timed = [v for v in result["epochs"] if "robust_epoch_seconds" in v]
    if timed:
        print(f"{'variant':>14} {'epoch s':>8} {'train s':>8} {'test s':>7} {'img/s':>8} {'GPU %':>6}")
    for v in timed:
        util = "-" if v["gpu_util_mean"] is None else f"{v['gpu_util_mean']:.0f}"
        print(f"{v['variant']:>14} {v['robust_epoch_seconds']:8.2f} {v['train_seconds']:8.2f} {v['test_seconds']:7.2f} "
              f"{v['images_per_s']:8.0f} {util:>6}")
    best = min((v["robust_epoch_seconds"] for v in timed), default=None)
    for device, seconds in PUBLIC.items() if result["cuda"] and best else ():
        print(f"public ACT code on an {device}: {seconds:.0f} s per epoch -> best here {best:.2f} s "
              f"({seconds / best:.1f}x; CIFAR-100 has 50,000 images: compare full-size runs only)")
    if result["skipped"]:
        print("skipped: " + "; ".join(result["skipped"]))


def record_path(out: str, device: str, date: str) -> Path:
    """gpu-<device>-<UTC date and time>.json: a later run never overwrites an earlier one's record."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device).strip("-").lower()
    return Path(out) / f"gpu-{slug}-{date.replace(':', '').replace('+0000', 'Z')}.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="seconds for the whole command, imports and CUDA start included (default 480)")
    parser.add_argument("--plan", action="store_true", help="print the parts the budget admits, in order, and exit")
    parser.add_argument("--train", type=int, default=50_000, help="training images (CIFAR-100 has 50,000)")
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of " + ", ".join(VARIANTS) + " (they run in this order)")
    parser.add_argument("--skip-checks", action="store_true", help="do not run the CUDA checks")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the command, not speed")
    parser.add_argument("--out", default=str(RESULTS), help="folder of the JSON record")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: {', '.join(unknown)} not among {', '.join(VARIANTS)}")
    if not args.plan and not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA device here: this command measures a GPU (use --smoke to check it on the CPU, "
                     "--plan to see what a budget admits)")
    return args


def setting(args: argparse.Namespace) -> Setting:
    device = "cpu" if args.smoke else "cuda"
    wanted = args.variants.split(",")
    variants = [v for v in VARIANTS if v in wanted] if device == "cuda" else ["eager"]  # compile, capture: GPU
    return Setting(device=device, train=256 if args.smoke else args.train, test=128 if args.smoke else args.test,
                   model="tinycnn" if args.smoke else "sevencnn", smoke=args.smoke,
                   scratch=tempfile.mkdtemp(prefix="act-gpu-"), variants=variants)


def allow_recompiles(limit: int = 64) -> None:
    """Many runs in one process: a run alone compiles each phase once, but if a later part's
    guards failed, dynamo's default limit of 8 compiles per function would make it run eagerly
    without a word, and a 'compile' variant would time the eager step."""
    import torch._dynamo.config as dynamo

    for name in ("recompile_limit", "cache_size_limit"):  # both names in torch 2.11 and 2.14; older ones: the second
        if hasattr(dynamo, name):
            setattr(dynamo, name, max(limit, getattr(dynamo, name)))
            return


def main(argv: list[str] | None = None, clock: Callable[[], float] = time.monotonic,
         started: float | None = None) -> dict:
    args = parse_args(argv)
    s = setting(args)
    allow_recompiles()
    if args.plan:
        rows = plan(s, args.budget_s, args.skip_checks, STARTUP_S if s.cuda else 0.0)
        print_plan(rows, args.budget_s, STARTUP_S if s.cuda else 0.0)
        return {"plan": rows}
    budget = Budget(args.budget_s, clock, started)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
    device = device_name(torch.device(s.device))
    result = {"date": date, "commit": commit(), "device": device, "cuda": s.cuda, "torch": torch.__version__,
              "train": s.train, "test": s.test, "budget_s": args.budget_s, "skipped": budget.skipped, "epochs": []}
    session = Session(s, budget, result, record_path(args.out, device, date), argv)
    print(f"{device} | torch {torch.__version__} | {budget.left():.0f} s of the budget left after the start",
          flush=True)
    run_parts(session, args.skip_checks)
    session.record()
    print_table(result)
    print(f"written to {session.path}")
    return result


if __name__ == "__main__":
    main(started=STARTED)  # the process's own start: a call from code (a test) counts from its call

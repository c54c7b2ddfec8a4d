"""The GPU figures in one command: CUDA tests, epoch times of each step variant, pipeline speed.

    pip install --no-deps --no-build-isolation -e .    # on the GPU machine
    python -m benchmarks.gpu [--epochs-data 50000] [--out DIR] [--skip-tests]

1. `pytest -m cuda`: the tests that need a GPU (ops on CUDA = CPU byte for byte, graph replay
   = eager step, no host sync over a graphed epoch).
2. CIFAR-100-shaped epochs (random uint8 data, 50,000 train / 10,000 test, sevencnn, batch 128,
   the tensor pipeline with the real per-sample AutoAugment strong view), each variant a fresh
   run of one warm-up and two robust epochs: eager / compile / graph / compile + graph. The
   figure is the last robust epoch (the first of each phase holds compile and capture), train
   and test apart, with the GPU utilisation nvidia-smi sampled during the run.
3. The tensor pipeline alone (both views), images/s.
Writes benchmarks/results/gpu-<device>-<date>.json and prints the table against the public
code (BASELINES.md: 27 s per epoch on an H100, 40 s on an RTX 3090).
`--smoke` runs the same code on the CPU with tiny sizes, tinycnn and without the CUDA-only
variants (what the tests check); its figures mean nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from act.config import load_config
from act.build import prepare
from act.train import loop
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


def cuda_tests() -> dict:
    """Run `pytest -m cuda` in a subprocess; its summary line and exit code."""
    if importlib.util.find_spec("pytest") is None:
        print("pytest is not installed here: the CUDA tests did not run (install pytest, or carry its wheel)")
        return {"exit_code": None, "summary": "not run: pytest is not installed"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    lines = [line for line in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
    print(proc.stdout[-3000:] if proc.returncode else (lines[-1] if lines else proc.stdout[-500:]))
    return {"exit_code": proc.returncode, "summary": lines[-1] if lines else None}


def time_variant(name: str, device: str, train: int, test: int, model: str = "sevencnn") -> dict:
    """One fresh run of the variant: a warm-up epoch and two robust ones; the last robust epoch timed."""
    out = tempfile.mkdtemp(prefix="act-gpu-")
    cfg = load_config(None, ["data.name=cifar100n", "data.root=random", f"model.name={model}", f"run.device={device}",
                             "optim.batch_size=128", "optim.warmup_epochs=1", "optim.epochs=3",
                             "optim.lr_decay=cosine:1,5e-4,3", "pipeline.name=tensor", "run.progress=false",
                             f"run.out_dir={out}", *VARIANTS[name]])
    run = prepare(cfg, source=random_cifar(train, test, classes=100))
    sampler = UtilisationSampler() if run.device.type == "cuda" else None
    if sampler:
        sampler.start()
    start = time.perf_counter()
    with open(Path(out) / "console.txt", "w") as console:
        loop(run, out=console)
    wall = time.perf_counter() - start
    if sampler:
        sampler.stopped.set()
    last = run.history[-1]
    return {"variant": name, "robust_epoch_seconds": last["epoch_seconds"], "train_seconds": last["train_seconds"],
            "test_seconds": last["epoch_seconds"] - last["train_seconds"], "images_per_s": last["images_per_s"],
            "warmup_epoch_seconds": run.history[0]["epoch_seconds"],
            "first_robust_epoch_seconds": run.history[1]["epoch_seconds"], "wall_seconds": wall,
            "gpu_util_mean": sampler.mean() if sampler else None, "rtm_test_acc": last["rtm_test_acc"]}


def print_table(result: dict) -> None:
    print(f"\n{result['device']} | torch {result['torch']} | {result['train']} train / {result['test']} test images")
    print(f"{'variant':>14} {'epoch s':>8} {'train s':>8} {'test s':>7} {'img/s':>8} {'GPU %':>6}")
    for v in result["epochs"]:
        util = "-" if v["gpu_util_mean"] is None else f"{v['gpu_util_mean']:.0f}"
        print(f"{v['variant']:>14} {v['robust_epoch_seconds']:8.2f} {v['train_seconds']:8.2f} {v['test_seconds']:7.2f} "
              f"{v['images_per_s']:8.0f} {util:>6}")
    for device, seconds in PUBLIC.items() if result["cuda"] else ():
        best = min(v["robust_epoch_seconds"] for v in result["epochs"])
        print(f"public ACT code on an {device}: {seconds:.0f} s per epoch -> best here {best:.2f} s "
              f"({seconds / best:.1f}x; CIFAR-100 has 50,000 images: compare full-size runs only)")
    for p in result["pipelines"]:
        print(f"pipeline {p['pipeline']} (both views): {p['images_per_s']:.0f} images/s")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=50_000, help="training images (CIFAR-100 has 50,000)")
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m cuda first")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the command, not speed")
    parser.add_argument("--out", default=str(RESULTS), help="folder of the JSON record")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        parser.error("no CUDA device here: this command measures a GPU (use --smoke to check it on the CPU)")
    device = "cuda" if cuda and not args.smoke else "cpu"
    train, test = (512, 256) if args.smoke else (args.train, args.test)
    variants = [v for v in args.variants.split(",") if v in VARIANTS]
    if device == "cpu":  # capture needs CUDA; compiling on the CPU takes minutes and says nothing here
        variants = [v for v in variants if v == "eager"]
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit(),
              "device": device_name(torch.device(device)), "cuda": device == "cuda", "torch": torch.__version__, "train": train, "test": test,
              "cuda_tests": None if args.skip_tests or not cuda else cuda_tests(), "epochs": [], "pipelines": []}
    for name in variants:
        print(f"timing {name} ...", flush=True)
        result["epochs"].append(time_variant(name, device, train, test, "tinycnn" if args.smoke else "sevencnn"))
    source = random_cifar(train, test, classes=100)
    result["pipelines"].append(measure("tensor", source, torch.device(device), 128, batches=10 if args.smoke else 300,
                                       warmup=2 if args.smoke else 20, workers=0))
    print_table(result)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", result["device"]).strip("-").lower()
    path = Path(args.out) / f"gpu-{slug}-{result['date'][:10]}.json"
    header = ("date", "commit", "torch", "device")
    write_record(path, "gpu", {k: v for k, v in result.items() if k not in header}, command_line("benchmarks.gpu", argv),
                 {"train": train, "test": test, "variants": variants}, result["device"])
    print(f"written to {path}")
    return result


if __name__ == "__main__":
    main()

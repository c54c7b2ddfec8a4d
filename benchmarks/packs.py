"""Packs against the other ways to share a GPU: for the same K runs, the last robust epoch of

- one after another: one run alone, times K (the K runs differ only in seed, so each costs the same);
- K processes at once: K `python -m act train` processes started together on the same device,
  what `act sweep --per-gpu K` runs (their kernels overlap on the GPU without any new code);
  the slowest process's epoch, and their wall time from start to the last exit;
- one pack of K: `act train --pack`, the K runs in one packed step (fewer launches, not less
  GPU work: against a compiled and captured single run it may gain little).

The runs: seeds 0..K-1 of CIFAR-100N-shaped random arrays (an .npz read as data.name=arrays), the
model at batch 128, one warm-up and two robust epochs, run.compile and run.cuda_graph on auto (as
each run decides alone). Each figure is handed to `report` the moment it is measured, so a
time-out keeps everything measured before it.

    python -m benchmarks.packs [--packs 1,3,9] [--train 50000] [--test 10000] [--out DIR]
    python -m benchmarks.packs --smoke      # on the CPU: tiny sizes and tinycnn; checks the command

It writes a record only where --out says (packs-<device>-<date and time>.json, rewritten after
each figure). `benchmarks.gpu` runs it as its part packed_epochs.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# With `smoke`: at most 128 train and 64 test images of 16 x 16 (one step per epoch, each run a
# few seconds on a CPU; its figures mean nothing).
SMOKE = (128, 64, 16)


@dataclass
class Setting:
    """What packed_epochs reads (benchmarks.gpu's Setting adds the epoch variants to it)."""

    device: str
    train: int
    test: int
    model: str
    smoke: bool
    scratch: str

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"


def random_arrays(train: int, test: int, side: int, folder: Path) -> Path:
    """CIFAR-100N-shaped random data (side x side RGB, 100 classes, each present in both splits) as
    an .npz of arrays."""
    rng = np.random.default_rng(0)
    path = folder / "cifar.npz"
    labels = [np.arange(n) % 100 for n in (train, test)]
    np.savez(path, x=rng.integers(0, 256, (train, side, side, 3), dtype=np.uint8), y=rng.permutation(labels[0]),
             x_test=rng.integers(0, 256, (test, side, side, 3), dtype=np.uint8), y_test=rng.permutation(labels[1]))
    return path


def last_robust(folder: Path) -> float:
    """A run folder's last epoch time (its last metrics line: a robust epoch)."""
    return json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])["epoch_seconds"]


def packed_epochs(s, report: Callable[[dict], None], packs: tuple[int, ...] | None = None) -> dict:
    """For K in `packs` (default 1, 3, 9 on CUDA; 1, 2 with s.smoke): one run alone (so K runs
    one after another), K processes at once, one pack of K; `report(result so far)` after each.
    `s`: device, train, test, model, smoke, scratch (a folder for the runs), as Setting; with
    smoke, SMOKE's sizes."""
    from act.config import load_config
    from act.pack.run import train_pack
    from act.run.loop import train

    packs = packs or ((1, 2) if s.smoke else (1, 3, 9))
    train_size, test_size, side = (min(s.train, SMOKE[0]), min(s.test, SMOKE[1]), SMOKE[2]) if s.smoke else \
        (s.train, s.test, 32)
    out = Path(tempfile.mkdtemp(prefix="packs-", dir=s.scratch))
    base = ["data.name=arrays", f"data.root={random_arrays(train_size, test_size, side, out)}", f"model.name={s.model}",
            f"run.device={s.device}", "optim.batch_size=128", "optim.warmup_epochs=1", "optim.epochs=3",
            "optim.lr_decay=cosine:1,5e-4,3", "run.compile=auto", "run.cuda_graph=auto", "run.progress=false",
            "run.plots=false", f"run.out_dir={out}"]
    result = {"model": s.model, "device": s.device, "train": train_size, "test": test_size, "image_side": side,
              "batch_size": 128, "packs": []}

    start = time.perf_counter()
    with open(out / "alone.txt", "w") as console:
        train(load_config(None, [*base, "run.seed=0", "run.name=alone"]), out=console)
    alone = last_robust(out / "alone")
    result["alone"] = {"robust_epoch_s": alone, "wall_s": time.perf_counter() - start}
    print(f"  one run alone: {alone:.2f} s per robust epoch", flush=True)
    report(result)
    for k in packs:
        entry = {"k": k, "one_after_another_s": k * alone, "one_after_another_wall_s": k * result["alone"]["wall_s"]}
        result["packs"].append(entry)
        folders, wall = processes(base, k, out)
        entry.update(processes_s=max(last_robust(f) for f in folders), processes_wall_s=wall)
        print(f"  {k} processes at once: {entry['processes_s']:.2f} s per robust epoch (the slowest)", flush=True)
        report(result)
        runs = [{"overrides": [*base, f"run.seed={i}", f"run.name=pack{k}-{i}"]} for i in range(k)]
        (out / f"pack{k}.yaml").write_text(json.dumps({"runs": runs}))  # JSON is YAML
        start = time.perf_counter()
        with open(out / f"pack{k}.txt", "w") as console:
            train_pack(out / f"pack{k}.yaml", out=console)
        entry.update(pack_s=max(last_robust(out / f"pack{k}-{i}") for i in range(k)),
                     pack_wall_s=time.perf_counter() - start)
        print(f"  pack of {k}: {entry['pack_s']:.2f} s per robust epoch; one after another {k * alone:.2f} s; "
              f"{k} processes {entry['processes_s']:.2f} s", flush=True)
        report(result)
    return result


def processes(base: list[str], k: int, out: Path) -> tuple[list[Path], float]:
    """K `python -m act train` processes (seeds 0..K-1) started at once on the same device; their
    run folders and the wall time until the last exits. A process that fails raises, with its log's end."""
    from act.sweep.executors import start

    folders = [out / f"procs{k}-{i}" for i in range(k)]
    logs = [open(out / f"procs{k}-{i}.txt", "w") for i in range(k)]
    procs = []
    begin = time.perf_counter()
    try:
        for i, (folder, log) in enumerate(zip(folders, logs)):
            argv = [sys.executable, "-m", "act", "train", *base, f"run.seed={i}", f"run.name={folder.name}"]
            procs.append(start(argv, log, cwd=ROOT))
        codes = [p.wait() for p in procs]
    finally:
        for p in procs:  # stopped early (an error, an interrupt): none left running
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    wall = time.perf_counter() - begin
    for i, code in enumerate(codes):
        if code != 0:
            tail = (out / f"procs{k}-{i}.txt").read_text().strip().splitlines()[-3:]
            raise RuntimeError(f"process {i + 1} of {k} exited with {code}: {' | '.join(tail)}")
    return folders, wall


def print_table(result: dict) -> None:
    print(f"\n{result['model']} on {result['device']}, {result['train']} train images, batch "
          f"{result['batch_size']}: seconds per robust epoch of K runs")
    print(f"{'K':>3} {'one after another':>18} {'K processes':>12} {'pack of K':>10}")
    for e in result["packs"]:
        cells = [f"{e[key]:.2f}" if key in e else "-" for key in ("one_after_another_s", "processes_s", "pack_s")]
        print(f"{e['k']:>3} {cells[0]:>18} {cells[1]:>12} {cells[2]:>10}")


def main(argv: list[str] | None = None) -> dict:
    import torch

    from benchmarks.pipelines import device_name
    from benchmarks.record import command_line, write_record

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", help="comma-separated K (default 1,3,9; 1,2 with --smoke)")
    parser.add_argument("--train", type=int, default=50_000, help="training images (CIFAR-100 has 50,000)")
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the command, not speed")
    parser.add_argument("--out", help="folder of the JSON record (default: none written)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        parser.error("no CUDA device here: this command measures a GPU (use --smoke to check it on the CPU)")
    try:
        packs = tuple(int(k) for k in args.packs.split(",")) if args.packs else None
    except ValueError:
        parser.error(f"--packs takes comma-separated whole numbers, not {args.packs}")
    if packs is not None and min(packs) < 1:
        parser.error("--packs: each K is at least 1")
    device = "cuda" if cuda and not args.smoke else "cpu"
    s = Setting(device=device, train=SMOKE[0] if args.smoke else args.train, test=SMOKE[1] if args.smoke else args.test,
                model="tinycnn" if args.smoke else "sevencnn", smoke=args.smoke,
                scratch=tempfile.mkdtemp(prefix="act-packs-"))
    name = device_name(torch.device(device))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    path = Path(args.out) / f"packs-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-').lower()}-{stamp}.json" \
        if args.out else None

    def report(result: dict) -> None:
        if path is not None:
            write_record(path, "packs", result, command_line("benchmarks.packs", argv),
                         {"train": s.train, "test": s.test, "model": s.model, "packs": packs}, name)

    result = packed_epochs(s, report, packs)
    print_table(result)
    if path is not None:
        print(f"written to {path}")
    return result


if __name__ == "__main__":
    main()

"""Accuracy effect of a setting: the same config trained with and without overrides, over seeds.

    python -m benchmarks.compare [--config FILE] --change method.fuse_views=true --seeds 0,1,2 \
        [--json OUT.json] [key=value ...]

Prints and records the RTM's last-10 mean test accuracy of each seed for the baseline and
the changed run (without --config: the embedded demo). Seeds vary both the run seed and the
noise seed.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import date

import torch

from act import train as training
from act.config import load_config


def run(config: str | None, overrides: list[str], seed: int, out_dir: str) -> float:
    cfg = load_config(config, [*overrides, f"run.seed={seed}", f"data.noise.seed={seed}", f"run.out_dir={out_dir}",
                               "run.progress=false"])
    return training.train(cfg, out=io.StringIO())["rtm"]["last10_mean"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None)
    parser.add_argument("--change", nargs="+", required=True, metavar="key=value")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", default=None)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {"command": " ".join(["python -m benchmarks.compare", *(sys.argv[1:] if argv is None else argv)]),
               "machine": machine(), "date": date.today().isoformat(), "commit": commit(),
               "config": args.config or "demo", "overrides": args.overrides, "change": args.change, "seeds": seeds}
    with tempfile.TemporaryDirectory() as out_dir:
        for name, extra in (("baseline", []), ("changed", args.change)):
            accs = [run(args.config, [*args.overrides, *extra], seed, out_dir) for seed in seeds]
            results[name] = {"rtm_last10_mean": accs, "mean": statistics.fmean(accs),
                             "std": statistics.pstdev(accs)}
            print(f"{name:>9}: {' '.join(f'{a:.2f}' for a in accs)}  ->  {results[name]['mean']:.2f} "
                  f"+- {results[name]['std']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


def machine() -> str:
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{os.cpu_count()}-core {platform.machine()} CPU{gpu}"


def commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()

"""Wall time of the README's main job: `act train` on the embedded demo, as a user runs it.

    python -m benchmarks.demo [--repeat 3] [--json benchmarks/results/demo_cpu.json] [key=value ...]

Each repeat runs `python -m act train` in a fresh process (interpreter start, imports, data,
training, test passes, writing the run folder: all of what a user waits for) into a temporary
run folder, and reads the run's summary.json. Records the wall seconds of every repeat, their
median, the median epoch time and the demo's figures (RTM/NTM last-10 mean, selection precision,
actual noise rate) in the record format of benchmarks/record.py.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.record import command_line, write_record


def run_once(out_dir: Path, overrides: list[str]) -> tuple[float, dict]:
    """(wall seconds, summary.json) of one `python -m act train` into `out_dir`."""
    command = [sys.executable, "-m", "act", "train", f"run.out_dir={out_dir}", "run.progress=false", *overrides]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"act train failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    summary = next(out_dir.glob("*/summary.json"))
    return seconds, json.loads(summary.read_text())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the demo (default 3)")
    parser.add_argument("--json", default=None, help="write the record here")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides of the demo")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be >= 1")
    walls, summary = [], {}
    for k in range(args.repeat):
        with tempfile.TemporaryDirectory() as out:
            seconds, summary = run_once(Path(out), args.overrides)
        walls.append(seconds)
        print(f"run {k + 1}/{args.repeat}: {seconds:.1f} s wall, median epoch {summary['epoch_seconds_median']:.3f} s, "
              f"RTM {summary['rtm']['last10_mean']:.2f}%", flush=True)
    figures = {
        "wall_seconds": walls, "wall_seconds_median": statistics.median(walls),
        "epoch_seconds_median": summary["epoch_seconds_median"], "epochs": summary["epochs"],
        "rtm_last10_mean": summary["rtm"]["last10_mean"], "ntm_last10_mean": summary["ntm"]["last10_mean"],
        "selection_precision_last_epoch": summary["selection"]["precision"],
        "actual_noise_rate": summary["noise"]["actual_noise_rate"],
        "pipeline": summary["pipeline"], "device": summary["device"],
    }
    print(f"median of {args.repeat}: {figures['wall_seconds_median']:.1f} s wall")
    config = {"config": "demo", "overrides": args.overrides, "repeat": args.repeat}
    if args.json:
        write_record(args.json, "demo", figures, command_line("benchmarks.demo", argv), config)
    return figures


if __name__ == "__main__":
    main()

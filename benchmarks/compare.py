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
import statistics
import tempfile

from act.config import load_config
from act.run import loop as training
from benchmarks.record import command_line, write_record


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
    config = {"config": args.config or "demo", "overrides": args.overrides, "change": args.change, "seeds": seeds}
    results = {}
    with tempfile.TemporaryDirectory() as out_dir:
        for name, extra in (("baseline", []), ("changed", args.change)):
            accs = [run(args.config, [*args.overrides, *extra], seed, out_dir) for seed in seeds]
            results[name] = {"rtm_last10_mean": accs, "mean": statistics.fmean(accs),
                             "std": statistics.pstdev(accs)}
            print(f"{name:>9}: {' '.join(f'{a:.2f}' for a in accs)}  ->  {results[name]['mean']:.2f} "
                  f"+- {results[name]['std']:.2f}", flush=True)
    if args.json:
        write_record(args.json, "compare", results, command_line("benchmarks.compare", argv), config)
    return results


if __name__ == "__main__":
    main()

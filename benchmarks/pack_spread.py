"""What packing preserves in float32: the demo (digits, tinycnn, CPU) trained alone and packed for
several seeds, and per seed the RTM last-10 of each and their difference.

In float64 a packed run equals the run alone to 1e-10 (tests/test_pack_runs.py). In float32 (or
bf16) the grouped convolutions of a pack sum in another order: the two agree at epoch 0 and then
drift apart by rounding, which the selection amplifies; they agree statistically, over seeds, not
run by run. This measures by how much.

    python -m benchmarks.pack_spread [--seeds 0,1,2,3] [--epochs 20] [--json FILE] [key=value ...]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
from pathlib import Path

import yaml

from act.config import load_config
from act.pack.run import train_pack
from act.run import loop
from benchmarks.record import command_line, write_record


def settings(epochs: int, extra: list[str]) -> list[str]:
    warmup = max(1, epochs // 4)
    return [f"optim.epochs={epochs}", f"optim.warmup_epochs={warmup}", f"optim.lr_decay=cosine:{warmup},5e-4,{epochs}",
            "run.threads=1", "run.progress=false", "run.plots=false", "run.device=cpu", *extra]


def measure(seeds: list[int], epochs: int, extra: list[str]) -> list[dict]:
    """Per seed: the RTM last-10 of the run alone and of the same run in a pack of all seeds."""
    common = settings(epochs, extra)
    with tempfile.TemporaryDirectory() as scratch:
        alone = {}
        for seed in seeds:
            cfg = load_config(None, [*common, f"run.seed={seed}", f"run.out_dir={scratch}/alone", f"run.name=s{seed}"])
            with contextlib.redirect_stdout(io.StringIO()):
                alone[seed] = loop.train(cfg, out=io.StringIO())["rtm"]["last10_mean"]
        pack = Path(scratch) / "pack.yaml"
        pack.write_text(yaml.safe_dump({"runs": [{"overrides": [*common, f"run.seed={seed}",
                                                                f"run.out_dir={scratch}/packed", f"run.name=s{seed}"]}
                                                 for seed in seeds]}))
        packed = {seed: summary["rtm"]["last10_mean"]
                  for seed, summary in zip(seeds, train_pack(pack, out=io.StringIO()))}
    return [{"seed": seed, "alone": alone[seed], "packed": packed[seed], "difference": packed[seed] - alone[seed]}
            for seed in seeds]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--json", metavar="FILE", help="write the record here (benchmarks/record.py)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. run.amp=bf16")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = measure(seeds, args.epochs, args.overrides)
    print(f"{'seed':>4}  {'alone':>7}  {'packed':>7}  {'packed - alone':>14}")
    for r in rows:
        print(f"{r['seed']:>4}  {r['alone']:>7.2f}  {r['packed']:>7.2f}  {r['difference']:>+14.2f}")
    differences = [r["difference"] for r in rows]
    spread = {"mean_difference": statistics.mean(differences),
              "sd_difference": statistics.stdev(differences) if len(differences) > 1 else 0.0,
              "max_abs_difference": max(abs(d) for d in differences),
              "sd_alone": statistics.stdev([r["alone"] for r in rows]) if len(rows) > 1 else 0.0}
    print(f"packed - alone over {len(rows)} seeds: mean {spread['mean_difference']:+.2f}, "
          f"sd {spread['sd_difference']:.2f}, largest {spread['max_abs_difference']:.2f} "
          f"(the seeds' own sd alone: {spread['sd_alone']:.2f}) percentage points of RTM last-10")
    if args.json:
        write_record(args.json, "pack_spread", {"seeds": rows, **spread}, command_line("benchmarks.pack_spread", argv),
                     config={"seeds": seeds, "epochs": args.epochs, "overrides": args.overrides})
    return rows


if __name__ == "__main__":
    main()

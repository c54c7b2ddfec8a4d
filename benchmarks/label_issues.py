"""`act issues` against cleanlab's `find_label_issues` on the digits demo (40% symmetric noise).

Three lists, each scored against the labels the noise truly flipped:
  act        `act issues` on a full demo run (selections + the bank's EMA, see act/commands/issues.py);
  cleanlab   `cleanlab.filter.find_label_issues(noisy, pred_probs)` with
             - `ema`: the same run's bank EMA as pred_probs (in-sample: the run trained on those samples);
             - `oos`: out-of-sample probabilities: K runs of the same ACT config, each trained on the
               other folds' noisy labels, its RTM's softmax on the held-out fold (what cleanlab asks for).

    python -m benchmarks.label_issues [--folds 4] [--json benchmarks/results/label_issues_digits_cpu.json]

Needs `pip install cleanlab` (the `cleanlab` extra).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from act.commands import issues as label_issues
from act.config import load_config
from act.datasets import read_source
from act.datasets.base import Source, Split
from act.run import loop as training
from act.run.build import prepare
from act.run.runtime import decide
from act.run.folder import taken
from benchmarks.record import command_line, machine, write_record

COMMON = ["run.progress=false", "run.plots=false", "run.device=cpu"]


def scores(listed: np.ndarray, flipped: np.ndarray) -> dict:
    hits = int(flipped[listed].sum())
    precision = 100.0 * hits / len(listed) if len(listed) else None
    recall = 100.0 * hits / flipped.sum()
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    return {"listed": int(len(listed)), "precision": precision, "recall": recall, "f1": f1}


def fold_probabilities(noisy: np.ndarray, folds: int, out: Path) -> np.ndarray:
    """Out-of-sample softmax of the RTM for every training sample, by K-fold training of the demo config."""
    source = read_source("digits", None, 0, 0.0)
    images = source.train.images
    order = np.random.RandomState(0).permutation(len(noisy))
    probs = np.zeros((len(noisy), source.num_classes), dtype=np.float32)
    for k, held in enumerate(np.array_split(order, folds)):
        kept = np.setdiff1d(order, held)
        fold = Source(name="digits", train=Split(labels=noisy[kept], images=images[kept]),
                      test=Split(labels=noisy[held], images=images[held]), classes=source.classes,
                      augment=source.augment, image_size=source.image_size, channels=source.channels,
                      mean=source.mean, std=source.std)
        # The labels given are already the noisy ones: no noise on top.
        cfg = load_config(None, [f"run.out_dir={out}", f"run.name=fold{k}", "data.noise.type=none", *COMMON])
        run = prepare(cfg, decide(cfg), source=fold)
        with run.folder.held(taken):
            training.loop(run, out=open("/dev/null", "w"))
        run.ctx.rtm.eval()
        with torch.no_grad():
            batches = [run.ctx.rtm(x).softmax(1) for x, _ in run.pipeline.test_batches()]
        probs[held] = torch.cat(batches).numpy()
        print(f"fold {k}: RTM accuracy on its held-out noisy labels {100 * (probs[held].argmax(1) == noisy[held]).mean():.1f} %")
    return probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--json", help="record the figures in this file")
    args = parser.parse_args()
    from cleanlab.filter import find_label_issues

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        start = time.perf_counter()
        training.train(load_config(None, [f"run.out_dir={out}", "run.name=demo", *COMMON]), out=open("/dev/null", "w"))
        run_seconds = time.perf_counter() - start
        run = out / "demo"
        with np.load(run / "labels.npz") as z:
            noisy, flipped = z["noisy"], z["noisy"] != z["true"]
        issues = label_issues.find_issues(run)
        start = time.perf_counter()
        oos = fold_probabilities(noisy, args.folds, out)
        fold_seconds = time.perf_counter() - start
    results = {
        "act issues (selections + EMA, score > 0.5)": scores(issues.order, flipped),
        "cleanlab on the run's bank EMA (in-sample)": scores(
            find_label_issues(noisy, issues.bank.ema, return_indices_ranked_by="self_confidence"), flipped),
        f"cleanlab on {args.folds}-fold out-of-sample RTM probabilities": scores(
            find_label_issues(noisy, oos, return_indices_ranked_by="self_confidence"), flipped),
    }
    print(f"digits demo, {len(noisy)} training labels, {int(flipped.sum())} flipped "
          f"(one run {run_seconds:.0f} s; {args.folds} fold runs {fold_seconds:.0f} s)")
    for name, r in results.items():
        print(f"  {name:<60} listed {r['listed']:4d}  precision {r['precision']:5.1f} %  recall {r['recall']:5.1f} %  "
              f"F1 {r['f1']:5.1f} %")
    if args.json:
        write_record(args.json, "label_issues", {"flipped": int(flipped.sum()), "samples": len(noisy), "results": results,
                                                 "run_seconds": run_seconds, "fold_seconds": fold_seconds},
                     command_line("benchmarks.label_issues"), {"folds": args.folds, "demo_overrides": COMMON},
                     f"{machine()}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()

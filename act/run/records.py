"""What a run records about itself: one record per epoch (metrics.jsonl) and summary.json.

Both are written as strict JSON (a NaN or infinity becomes null) by act/run/folder.py's `RunFolder`.
`epoch_record` turns an epoch's statistics into its record, `summarise` the records into the
summary that `act report` reads.
"""
from __future__ import annotations

import numpy as np

from act.config import Config
from act.run.metrics import last_k_summary, selection_quality
from act.step import engine


def epoch_record(run, epoch: int, phase: str, totals: dict, accs: list[float], seconds: float,
                 train_seconds: float) -> dict:
    """The metrics record of one epoch from its summed statistics (engine.STAT_NAMES)."""
    quality = selection_quality(totals["selected"], totals["selected_clean"], totals["clean"]) if run.clean_known \
        else {"precision": None, "recall": None, "f1": None}
    samples, steps = int(totals["samples"]), totals["steps"]
    return {
        "epoch": epoch, "phase": phase, "lr": run.rtm_plan[epoch], "lr1": run.ntm_plan[epoch],
        "rtm_test_acc": accs[0], "ntm_test_acc": accs[1],
        "sel_precision": quality["precision"], "sel_recall": quality["recall"], "sel_f1": quality["f1"],
        "selected_frac": totals["selected"] / samples if samples else None,
        "mining": totals["mining_steps"] / steps if phase == "robust" and steps else None,
        "rtm_train_acc": 100.0 * totals["rtm_correct"] / samples if samples else None,
        "ntm_train_acc": 100.0 * totals["ntm_correct"] / samples if samples else None,
        "rtm_loss": totals["rtm_loss"] / steps if steps else None,
        "ntm_loss": totals["ntm_loss"] / steps if steps else None,
        "samples_seen": samples,
        "epoch_seconds": seconds, "train_seconds": train_seconds,
        "images_per_s": samples / train_seconds if train_seconds > 0 else None,
    }


def summarise(run, bank_consistent: bool) -> dict:
    """The summary of a run from its history and settings; `bank_consistent` is computed by the loop
    (a collective under DDP): writing a summary makes no collective and changes nothing."""
    h = run.history
    last = h[-1] if h else {}
    seconds = [r["epoch_seconds"] for r in h]
    return {
        "data": run.cfg.data.name, "method": run.cfg.method.name, "model": run.cfg.model.name,
        "noise": run.noise,
        "rtm": last_k_summary([r["rtm_test_acc"] for r in h]),
        "ntm": last_k_summary([r["ntm_test_acc"] for r in h]),
        "selection": {"precision": last.get("sel_precision"), "recall": last.get("sel_recall"),
                      "f1": last.get("sel_f1")},
        "epochs": len(h),
        "epoch_seconds_median": float(np.median(seconds)) if seconds else None,
        "device": str(run.device),
        "world_size": run.world.size, "bank_consistent": bank_consistent,
        "pipeline": run.pipeline.name, "views": run.pipeline.views,
        # Web-*/Food-101N files trained on as far as PIL recovers them (act/datasets/images.py).
        "truncated_images": {"count": len(run.pipeline.recovered), "files": sorted(run.pipeline.recovered)},
        "cuda_graph": graph_modes(run),
        "compiled": engine.compile_modes(run.steps),
        "runtime": run.runtime.record() if run.runtime is not None else None,
    }


def graph_modes(run) -> dict[str, str]:
    """How each phase's step ran ("graph", "eager", "fell back: <reason>"), and each view pass
    the pipeline captures (`views.*`)."""
    return {**{phase: step.mode for phase, step in run.steps.items()}, **run.pipeline.view_graphs()}


def noise_settings(cfg: Config) -> dict:
    """The noise keys of the config, kept beside the actual rate in noise.json and summary.json."""
    n = cfg.data.noise
    human = {"file": n.file, "labels": n.labels} if n.type == "human" else {}  # CIFAR-N's label set
    return {"type": n.type, "closeset_ratio": n.closeset_ratio, "openset_ratio": n.openset_ratio, "seed": n.seed,
            **human}

"""Accuracy summaries and the quality of sample selection."""
from __future__ import annotations

import math

import numpy as np


def selection_quality(selected: float, selected_clean: float, clean: float) -> dict[str, float | None]:
    """Precision, recall and F1 (%) of the selected set against `noisy label == true label`."""
    precision = 100.0 * selected_clean / selected if selected else None
    recall = 100.0 * selected_clean / clean if clean else None
    if precision is None or recall is None or precision + recall == 0:
        f1 = None if precision is None or recall is None else 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def last_k_summary(accuracies: list[float], k: int = 10) -> dict[str, float | None]:
    """Mean and (population) std of the last k epochs, best and final; the paper's figure is
    the mean of the last 10 epochs (np.std as in the public code)."""
    values = [a for a in accuracies if a is not None and not math.isnan(a)]
    if not values:
        return {"last10_mean": None, "last10_std": None, "best": None, "final": None}
    tail = np.asarray(values[-k:], dtype=np.float64)
    return {"last10_mean": float(tail.mean()), "last10_std": float(tail.std()),
            "best": float(max(values)), "final": float(values[-1])}


def warmup_in_last_k(history: list[dict], k: int = 10) -> tuple[int, int]:
    """(warm-up epochs, epochs) of the window `last_k_summary` averages: the last k epochs with an
    RTM accuracy. A run of 12 epochs with 10 of warm-up averages 8 warm-up epochs in its last 10."""
    window = [r for r in history if isinstance(r.get("rtm_test_acc"), (int, float))
              and not math.isnan(r["rtm_test_acc"])][-k:]
    return sum(r.get("phase") == "warmup" for r in window), len(window)

"""Label noise: transition matrices and the public code's exact sampler (ACT_SPEC.md "Noisy datasets")."""
from __future__ import annotations

import numpy as np

from act.errors import ActError


def transition_matrix(kind: str, closeset_ratio: float, openset_ratio: float, num_classes: int) -> np.ndarray:
    """P[i, j] = probability that true class i is labelled j.

    `kind` is "symmetric" or "asymmetric" (pair-flip to (i + 1) mod K). The first
    K = int(C * (1 - openset_ratio)) classes are closed-set; rows of open-set classes are
    uniform over the closed classes and columns of open-set classes are zero.
    """
    if kind not in ("symmetric", "asymmetric"):
        raise ActError(f"noise type {kind!r} has no transition matrix; choose symmetric or asymmetric")
    closed = int(num_classes * (1 - openset_ratio))
    assert 0.0 <= openset_ratio < 1.0 and 0.0 <= closeset_ratio < 1.0, "validated by act/config.py"
    if closed < 2:
        raise ActError(f"{num_classes} classes with openset ratio {openset_ratio} leave {closed} closed classes; need 2")
    p = np.zeros((num_classes, num_classes))
    if kind == "symmetric":
        p[:closed, :closed] = closeset_ratio / (closed - 1)
        np.fill_diagonal(p[:closed, :closed], 1.0 - closeset_ratio)
    else:
        for i in range(closed):
            p[i, i] = 1.0 - closeset_ratio
            p[i, (i + 1) % closed] += closeset_ratio
    p[closed:, :closed] = 1.0 / closed
    return p


def corrupt(labels: np.ndarray, matrix: np.ndarray, seed: int) -> np.ndarray:
    """Noisy labels sampled exactly as the public code does: one RandomState(seed) and, per
    sample in data set order, `multinomial(1, P[y_i], 1)`; the new label is the index of the 1."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(matrix)):
        raise ActError(f"labels range over [{labels.min()}, {labels.max()}] but the noise matrix has {len(matrix)} classes")
    rs = np.random.RandomState(seed)
    noisy = np.empty_like(labels)
    for n, y in enumerate(labels):
        noisy[n] = np.flatnonzero(rs.multinomial(1, matrix[y], 1)[0])[0]
    return noisy


def noise_report(true: np.ndarray, noisy: np.ndarray) -> dict:
    """Actual noise rate and counts, saved with the run."""
    wrong = noisy != true
    return {"samples": int(len(true)), "noisy_samples": int(wrong.sum()), "actual_noise_rate": float(wrong.mean()) if len(true) else 0.0}

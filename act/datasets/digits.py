"""scikit-learn's bundled 8 x 8 digits: a real data set that needs no download (the demo default)."""
from __future__ import annotations

import numpy as np

from act.datasets.base import Source, Split
from act.errors import ActError

TRAIN_FRACTION = 0.8


def read_digits() -> Source:
    """1797 grey 8 x 8 digits, split per class 80/20 with RandomState(0), each split in index order."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ActError("data set digits needs scikit-learn: pip install scikit-learn") from exc
    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    train, test = stratified_split(labels, TRAIN_FRACTION, seed=0)
    return Source(
        name="digits", train=Split(labels=labels[train], images=images[train]),
        test=Split(labels=labels[test], images=images[test]), classes=[str(i) for i in range(10)],
        image_size=8, channels=1, mean=(0.5,), std=(0.5,))


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class (ascending), shuffle its indices and send the first int(fraction * n) to train."""
    rs = np.random.RandomState(seed)
    train, test = [], []
    for c in np.unique(labels):
        index = np.flatnonzero(labels == c)
        rs.shuffle(index)
        cut = int(fraction * len(index))
        train.append(index[:cut])
        test.append(index[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))

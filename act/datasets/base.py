"""The data contract: a reader returns a Source; a pipeline turns a Source into Batches.

A Source holds labels and pixels for a train and a test split. Pixels come in one of two
forms: `images` (one uint8 array N x H x W x C, an "array source") or `files` (a list of
encoded image paths, a "file source"). Noise is applied later, to `train.labels`, by
`act.method.noise`; readers only ever return the labels the data set ships with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from act.errors import ActError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Split:
    """One split: its labels and its pixels (exactly one of `images`, `files`)."""

    labels: np.ndarray  # int64, shape (N,)
    images: np.ndarray | None = None  # uint8, shape (N, H, W, C)
    files: list[str] | None = None  # paths of encoded images (JPEG/PNG/...)
    # Noisy labels that come with the data (CIFAR-N's human labels, act/datasets/human.py); None: the
    # run's noise is synthetic, drawn by act.method.noise from `labels`.
    noisy: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if (self.images is None) == (self.files is None):
            raise ValueError("a Split holds exactly one of images or files")
        n = len(self.images) if self.images is not None else len(self.files)
        if n != len(self.labels) or (self.noisy is not None and len(self.noisy) != n):
            raise ValueError(f"a Split has {n} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, limit: int | None) -> "Split":
        """The first `limit` samples (all when limit is None or 0)."""
        if not limit or limit >= len(self):
            return self
        return Split(
            labels=self.labels[:limit],
            images=None if self.images is None else self.images[:limit],
            files=None if self.files is None else self.files[:limit],
            noisy=None if self.noisy is None else self.noisy[:limit],
        )


@dataclass
class Source:
    """A data set as read from disk.

    `classes` names the classes the model predicts (`num_classes` of them). `label_space`
    is the number of classes the labels are drawn from: larger than `num_classes` only for
    open-set data sets (CIFAR-80N), whose extra classes are noise whose true label the
    model can never predict. `augment` names the augmentation family of ACT_SPEC.md:
    "cifar" (small images: padded crop + flip, AutoAugment CIFAR-10 for the strong view),
    "web" (large images: resize + crop + flip, RandAugment), or "digits" (tiny grey images:
    1-pixel padded crop, no flip); read_source sets it from the data set's spec
    (act/datasets/registry.py).
    """

    name: str
    train: Split
    test: Split
    classes: list[str]
    label_space: int = 0
    augment: str = "cifar"
    image_size: int = 32  # side of the square the model sees
    resize: int = 0  # file sources: shorter side is resized to this before cropping (0: image_size)
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    recover_truncated: bool = False  # file sources: a truncated file trains on what PIL recovers (images.py)
    recovered: tuple[str, ...] = ()  # truncated files already recovered, as a conversion lists them

    def __post_init__(self) -> None:
        if not self.label_space:
            self.label_space = len(self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_array(self) -> bool:
        return self.train.images is not None


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Raise an ActError naming `where` when a label lies outside [0, num_classes)."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        raise ActError(
            f"{where}: {len(bad)} labels are outside [0, {num_classes}), "
            f"the first is {int(labels[bad[0]])} at position {int(bad[0])}")

"""Any small data set as one `.npz`: `x`, `y`, `x_test`, `y_test` (and optionally `classes`)."""
from __future__ import annotations

import os
import zipfile

import numpy as np

from act.datasets.base import IMAGENET_MEAN, IMAGENET_STD, Source, Split, check_labels
from act.errors import ActError

LAYOUT = ("an .npz file (or a folder holding exactly one) with uint8 x (N x H x W x C or N x H x W), "
          "integer y (N,), x_test, y_test, and optionally classes (names)")


def read_arrays(root: str | None) -> Source:
    """An array source from an .npz; classes default to "0".."max label"."""
    path = find_npz(root)
    try:
        with np.load(path, allow_pickle=False) as npz:
            contents = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ActError(f"{path}: cannot read it as an .npz of plain arrays (corrupt, or saved with pickled objects?): {exc}") from exc
    x, x_test = images(contents, "x", path), images(contents, "x_test", path)
    if x.shape[1:] != x_test.shape[1:]:
        raise ActError(f"{path}: x holds {x.shape[1:]} images but x_test holds {x_test.shape[1:]}")
    y, y_test = labels(contents, "y", len(x), path), labels(contents, "y_test", len(x_test), path)
    classes = class_names(contents, y, y_test, path)
    check_labels(y, len(classes), f"{path} (y)")
    check_labels(y_test, len(classes), f"{path} (y_test)")
    channels = x.shape[3]
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.5,) * channels, (0.5,) * channels)
    return Source(name="arrays", train=Split(labels=y, images=x), test=Split(labels=y_test, images=x_test),
                  classes=classes, image_size=x.shape[1], channels=channels, mean=mean, std=std)


def class_names(contents: dict[str, np.ndarray], y: np.ndarray, y_test: np.ndarray, path: str) -> list[str]:
    """The `classes` array, or "0".."max label" when every one of those labels occurs: a stray
    label (10**6 among ten classes) is refused here, before a model with that many outputs is built."""
    if "classes" in contents:
        return [str(name) for name in np.atleast_1d(contents["classes"])]
    present = np.unique(np.concatenate([y, y_test]))
    present = present[present >= 0]  # negative labels are refused by check_labels
    count = int(present[-1]) + 1 if len(present) else 1
    if len(present) != count:
        raise ActError(f"{path}: the labels reach {count - 1} but only {len(present)} of the classes 0..{count - 1} "
                       f"occur (a stray label?); fix the labels, or name every class in a 'classes' array")
    return [str(i) for i in range(count)]


def find_npz(root: str | None) -> str:
    """root itself when it is a file, else the one .npz inside the folder root."""
    if root and os.path.isfile(root):
        return root
    if root and os.path.isdir(root):
        found = sorted(name for name in os.listdir(root) if name.lower().endswith(".npz"))
        if len(found) == 1:
            return os.path.join(root, found[0])
        if found:
            raise ActError(f"data.root={root}: holds {len(found)} .npz files ({', '.join(found)}); name one of them")
    raise ActError(f"data.root={root}: no .npz file found; arrays expects {LAYOUT}")


def images(contents: dict[str, np.ndarray], key: str, path: str) -> np.ndarray:
    """contents[key] as N x H x W x C uint8 square images."""
    if key not in contents:
        raise ActError(f"{path}: has no array {key!r}; expected {LAYOUT}")
    x = contents[key]
    if x.dtype != np.uint8:
        raise ActError(f"{path}: {key} has dtype {x.dtype}, expected uint8 pixels (0..255)")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1] != x.shape[2] or not x.shape[3]:
        raise ActError(f"{path}: {key} has shape {x.shape}, expected N x H x W x C (or N x H x W) with H == W")
    if x.shape[3] not in (1, 3):
        raise ActError(f"{path}: {key} has {x.shape[3]} channels; arrays holds grey (1) or RGB (3) images "
                       f"(for RGBA, keep x[..., :3])")
    return np.ascontiguousarray(x)


def labels(contents: dict[str, np.ndarray], key: str, count: int, path: str) -> np.ndarray:
    """contents[key] as `count` integer labels (shape (N,) or (N, 1))."""
    if key not in contents:
        raise ActError(f"{path}: has no array {key!r}; expected {LAYOUT}")
    y = contents[key]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise ActError(f"{path}: {key} has dtype {y.dtype} and shape {y.shape}, expected integer labels of shape (N,)")
    if len(y) != count:
        raise ActError(f"{path}: {key} holds {len(y)} labels for {count} images")
    return y.astype(np.int64)

"""Data set readers: `read_source(name, root)` returns the Source of any registered data set."""
from __future__ import annotations

from typing import Callable

from act.datasets.arrays import read_arrays
from act.datasets.base import Source, Split
from act.datasets.cifar import read_cifar, read_cifar80n
from act.datasets.clothing1m import read_clothing1m
from act.datasets.digits import read_digits
from act.datasets.folder import read_image_folder
from act.datasets.food101n import read_food101n
from act.errors import ActError

# name -> reader(root, openset_ratio); only CIFAR-80N has classes to spare for open-set noise.
READERS: dict[str, Callable[[str | None, float], Source]] = {
    "cifar10n": lambda root, r: read_cifar(root, "cifar10n"),
    "cifar100n": lambda root, r: read_cifar(root, "cifar100n"),
    "cifar80n": read_cifar80n,
    "web-aircraft": lambda root, r: read_image_folder(root, "web-aircraft", image_size=448, resize=448),
    "web-bird": lambda root, r: read_image_folder(root, "web-bird", image_size=448, resize=448),
    "web-car": lambda root, r: read_image_folder(root, "web-car", image_size=448, resize=448),
    "food101n": lambda root, r: read_food101n(root),
    "clothing1m": lambda root, r: read_clothing1m(root),
    "folder": lambda root, r: read_image_folder(root, "folder", image_size=224, resize=256),
    "arrays": lambda root, r: read_arrays(root),
    "digits": lambda root, r: read_digits(),
}
DATASETS: tuple[str, ...] = tuple(READERS)
OPENSET_DATASETS = ("cifar80n",)

__all__ = ["DATASETS", "READERS", "Source", "Split", "read_source"]


def read_source(name: str, root: str | None, image_size: int = 0, openset_ratio: float = 0.0) -> Source:
    """Read data set `name` from `root`; a non-zero image_size overrides the data set's own.

    For file sources the resize side scales with it (Food-101N's 256/224 stays 8/7).
    """
    if name not in READERS:
        raise ActError(f"data.name={name!r} is not a known data set; choose one of {', '.join(DATASETS)}")
    if openset_ratio and name not in OPENSET_DATASETS:
        raise ActError(f"data.noise.openset_ratio={openset_ratio} needs a data set with classes to spare "
                       f"({', '.join(OPENSET_DATASETS)}); {name} has none: set it to 0")
    if image_size < 0:
        raise ActError(f"data.image_size={image_size} must be >= 0 (0: the data set's own size)")
    source = READERS[name](root, openset_ratio)
    if image_size and source.is_array and image_size != source.image_size:
        raise ActError(f"data.image_size={image_size}: {name} holds {source.image_size}x{source.image_size} arrays, "
                       f"which are used at their own size; set data.image_size=0 (or {source.image_size})")
    if image_size:
        if source.resize:
            source.resize = round(source.resize * image_size / source.image_size)
        source.image_size = image_size
    return source

"""Data set readers: `read_source(name, root)` returns the Source of any registered data set.

Each built-in data set is registered below with its facts (act/datasets/registry.py).
"""
from __future__ import annotations

from act.datasets.arrays import read_arrays
from act.datasets.base import Source, Split
from act.datasets.cifar import read_cifar, read_cifar80n
from act.datasets.clothing1m import read_clothing1m
from act.datasets.digits import read_digits
from act.datasets.folder import read_image_folder
from act.datasets.food101n import read_food101n
from act.datasets.registry import DatasetSpec, dataset_names, openset_names, register, spec_of
from act.errors import ActError

register(DatasetSpec("cifar10n", lambda root, r: read_cifar(root, "cifar10n"), "cifar", paper_name="CIFAR10N"))
register(DatasetSpec("cifar100n", lambda root, r: read_cifar(root, "cifar100n"), "cifar", paper_name="CIFAR100N"))
register(DatasetSpec("cifar80n", read_cifar80n, "cifar", openset=True, paper_name="CIFAR80N"))
for _name in ("aircraft", "bird", "car"):
    register(DatasetSpec(f"web-{_name}", lambda root, r, n=f"web-{_name}": read_image_folder(root, n, image_size=448, resize=448),
                         "web", clean_known=False, paper_name=f"Web-{_name.capitalize()}"))
register(DatasetSpec("food101n", lambda root, r: read_food101n(root), "web", clean_known=False, paper_name="Food-101N"))
register(DatasetSpec("clothing1m", lambda root, r: read_clothing1m(root), "web", clean_known=False,
                     paper_name="Clothing1M"))
register(DatasetSpec("folder", lambda root, r: read_image_folder(root, "folder", image_size=224, resize=256), "web"))
register(DatasetSpec("arrays", lambda root, r: read_arrays(root), "cifar"))
register(DatasetSpec("digits", lambda root, r: read_digits(), "digits", needs_root=False))

__all__ = ["DatasetSpec", "Source", "Split", "dataset_names", "read_source", "register", "spec_of"]


def read_source(name: str, root: str | None, image_size: int = 0, openset_ratio: float = 0.0) -> Source:
    """Read data set `name` from `root`; a non-zero image_size overrides the data set's own.

    For file sources the resize side scales with it (Food-101N's 256/224 stays 8/7).
    """
    spec = spec_of(name)
    if openset_ratio and not spec.openset:
        raise ActError(f"data.noise.openset_ratio={openset_ratio} needs a data set with classes to spare "
                       f"({', '.join(openset_names())}); {name} has none: set it to 0")
    if image_size < 0:
        raise ActError(f"data.image_size={image_size} must be >= 0 (0: the data set's own size)")
    source = spec.read(root, openset_ratio)
    source.augment = spec.augment
    if image_size and source.is_array and image_size != source.image_size:
        raise ActError(f"data.image_size={image_size}: {name} holds {source.image_size}x{source.image_size} arrays, "
                       f"which are used at their own size; set data.image_size=0 (or {source.image_size})")
    if image_size:
        if source.resize:
            source.resize = round(source.resize * image_size / source.image_size)
        source.image_size = image_size
    return source

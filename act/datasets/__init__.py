"""Data set readers: `read_data(cfg)` returns the Source a run trains on, `read_source(name, root)`
that of any registered data set.

Each built-in data set is registered below with its facts (act/datasets/registry.py); a folder
`act convert` wrote is read by act/datasets/converted.py. The settings were validated by
act/config.py; what is checked here needs the data itself (an array set's own size, the data
set and image size a conversion was made of).
"""
from __future__ import annotations

from dataclasses import replace

from act.datasets.arrays import find_npz, read_arrays
from act.datasets.base import Source, Split
from act.datasets.cifar import locate_cifar, read_cifar, read_cifar80n
from act.datasets.clothing1m import locate_clothing1m, read_clothing1m
from act.datasets.converted import read_converted_for
from act.datasets.digits import read_digits
from act.datasets.folder import image_folder_classes, read_image_folder
from act.datasets.food101n import locate_food101n, read_food101n
from act.datasets.human import with_human_labels
from act.datasets.registry import DatasetSpec, dataset_names, register, spec_of
from act.errors import ActError

register(DatasetSpec("cifar10n", lambda root, r: read_cifar(root, "cifar10n"), "cifar", paper_name="CIFAR10N",
                     locate=lambda root: locate_cifar(root, "cifar10n")))
register(DatasetSpec("cifar100n", lambda root, r: read_cifar(root, "cifar100n"), "cifar", paper_name="CIFAR100N",
                     locate=lambda root: locate_cifar(root, "cifar100n"), config="configs/cifar100n/sym20.yaml"))
register(DatasetSpec("cifar80n", read_cifar80n, "cifar", openset=True, label_space=100, paper_name="CIFAR80N",
                     locate=lambda root: locate_cifar(root, "cifar80n"), config="configs/cifar80n/sym20.yaml"))
# The public main_web.py and main_food101n.py load truncated files and start from ImageNet weights.
IMAGENET_RESNET50 = ("torchvision's ImageNet ResNet-50, resnet50-0676ba61.pth (IMAGENET1K_V1, with "
                     "model.name=timm:resnet50)")
for _name in ("aircraft", "bird", "car"):
    register(DatasetSpec(f"web-{_name}", lambda root, r, n=f"web-{_name}": read_image_folder(root, n, image_size=448, resize=448),
                         "web", clean_known=False, paper_name=f"Web-{_name.capitalize()}", recovers_truncated=True,
                         weights=IMAGENET_RESNET50, files=True,
                         locate=lambda root, n=f"web-{_name}": image_folder_classes(root, n),
                         config=f"configs/web/{_name}.yaml"))
register(DatasetSpec("food101n", lambda root, r: read_food101n(root), "web", clean_known=False, paper_name="Food-101N",
                     recovers_truncated=True, weights=IMAGENET_RESNET50, files=True, locate=locate_food101n,
                     config="configs/food101n.yaml"))
register(DatasetSpec("clothing1m", lambda root, r: read_clothing1m(root), "web", clean_known=False,
                     paper_name="Clothing1M", files=True, locate=locate_clothing1m, config="configs/clothing1m.yaml"))
register(DatasetSpec("folder", lambda root, r: read_image_folder(root, "folder", image_size=224, resize=256), "web",
                     files=True, locate=lambda root: image_folder_classes(root, "folder")))
register(DatasetSpec("arrays", lambda root, r: read_arrays(root), "cifar", locate=find_npz))
register(DatasetSpec("digits", lambda root, r: read_digits(), "digits", needs_root=False))

__all__ = ["DatasetSpec", "Source", "Split", "dataset_names", "limit", "read_data", "read_source", "register", "spec_of"]


def read_data(cfg) -> Source:
    """The Source of a run's config (act/config.py's Config): the conversion at pipeline.path or
    the data set data.name at data.root, with the human labels of data.noise.file where
    data.noise.type=human, cut to data.train_limit / data.test_limit."""
    d = cfg.data
    source = read_converted_for(cfg) if cfg.pipeline.path else \
        read_source(d.name, d.root, d.image_size, d.noise.openset_ratio)
    if d.noise.type == "human":  # checked against the whole training set, before data.train_limit cuts it
        source = with_human_labels(source, d.name, d.noise.file, d.noise.labels)
    return limit(source, cfg)


def limit(source: Source, cfg) -> Source:
    """A new Source of the first data.train_limit / data.test_limit samples of `source` (0: all)."""
    d = cfg.data
    source = replace(source, train=source.train.head(d.train_limit), test=source.test.head(d.test_limit))
    if len(source.train) == 0 or len(source.test) == 0:
        raise ActError(f"data set {d.name} has {len(source.train)} training and {len(source.test)} test samples; "
                       f"both must be > 0")
    return source


def read_source(name: str, root: str | None, image_size: int = 0, openset_ratio: float = 0.0) -> Source:
    """Read data set `name` from `root`; a non-zero image_size overrides the data set's own.

    For file sources the resize side scales with it (Food-101N's 256/224 stays 8/7).
    """
    spec = spec_of(name)
    assert image_size >= 0 and (spec.openset or not openset_ratio), "validated by act/config.py"
    source = spec.read(root, openset_ratio)
    source.augment = spec.augment
    source.recover_truncated = spec.recovers_truncated
    if image_size and source.is_array and image_size != source.image_size:
        raise ActError(f"data.image_size={image_size}: {name} holds {source.image_size}x{source.image_size} arrays, "
                       f"which are used at their own size; set data.image_size=0 (or {source.image_size})")
    if image_size:
        if source.resize:
            source.resize = round(source.resize * image_size / source.image_size)
        source.image_size = image_size
    return source

"""The data-set registry: every fact about a data set beside its reader.

A `DatasetSpec` says how to read the data set and what the rest of act needs to know of it:
whether `data.root` must be given, whether its true labels are known (synthetic noise) or
not (labels noisy by nature: no selection precision), whether it has classes to spare for
open-set noise, its augmentation family (pipelines/views.py), the name tables use, whether a
truncated image file trains on what PIL recovers of it (act/datasets/images.py) and the
weights file the paper's runs of it start from, how to find it at data.root without reading it, and
the shipped config of the paper's runs.
Config choices and messages, run summaries, `act issues` and `act report` read these facts
here; adding a data set is one `register(...)` call (act/datasets/__init__.py registers the
built-in ones).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from act.datasets.base import Source
from act.errors import ActError


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # the value of data.name
    read: Callable[[str | None, float], Source]  # (data.root, data.noise.openset_ratio) -> Source
    augment: str  # augmentation family: cifar | web | digits (pipelines/views.py)
    needs_root: bool = True  # False: the reader needs no data.root (bundled data)
    clean_known: bool = True  # False: labels noisy by nature, no true labels to score the selection
    openset: bool = False  # has classes to spare: data.noise.openset_ratio must be in (0, 1)
    label_space: int = 0  # classes of the labels before any are held out as open-set (0: known when read)
    paper_name: str = ""  # the name in report tables ("" : data.name)
    recovers_truncated: bool = False  # train on what PIL recovers of a truncated file, as the public Web/Food scripts
    weights: str = ""  # the weights file the paper's runs start from: a run without model.pretrained is refused
    files: bool = False  # read as image files (a FileSource), not arrays: pipeline.name=auto picks by it
    # data.root -> None, or one line where it holds no copy of the data set: the reader's own first
    # check, which reads no data (`act train --print-config` and `act sweep` check roots so, at once)
    locate: Callable[[str | None], object] | None = None
    config: str = ""  # the shipped config of the paper's runs, named where a run of it builds on the demo

    @property
    def title(self) -> str:
        return self.paper_name or self.name


SPECS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a data set; its name becomes a choice of data.name."""
    SPECS[spec.name] = spec
    return spec


def dataset_names() -> tuple[str, ...]:
    return tuple(SPECS)


def openset_names() -> tuple[str, ...]:
    return tuple(name for name, spec in SPECS.items() if spec.openset)


def spec_of(name: str) -> DatasetSpec:
    """The spec of data set `name`; an unknown name is one line listing the known ones."""
    if name not in SPECS:
        raise ActError(f"data.name={name!r} is not a known data set; choose one of {', '.join(SPECS)}")
    return SPECS[name]


def clean_known(name: str) -> bool:
    """Whether the true labels of `name` are known (unregistered names: assumed so)."""
    return SPECS[name].clean_known if name in SPECS else True


def title(name: str) -> str:
    """The name of data set `name` in tables (its own name where none is registered)."""
    return SPECS[name].title if name in SPECS else name

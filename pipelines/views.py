"""The weak, strong and test views of each augmentation family, declared once (ARCHITECTURE.md "Views").

A `ViewSpec` says what the public ACT code's transforms do for a family; every pipeline
(reference, tensor, dali, ffcv) builds its views from it, in its own engine:
- weak: for file data sets torchvision's `Resize(resize)` (shorter side, the longer one
  truncated), then `RandomCrop(image_size, padding)` (a uniform position) and
  `RandomHorizontalFlip()` when `flip`;
- strong: its own crop and flip, drawn independently of the weak view's (the public code
  builds it with a second transform), then the policy `strong` with the tables of the
  `randaugment` package the public code imports: PIL in the reference pipeline
  (pipelines/autoaugment_pil.py, pipelines/pil_ops.py), the byte-identical batched ops of
  pipelines/ops on the training device everywhere else;
- test: `Resize(resize)` + `CenterCrop(image_size)` for file data sets, the image as is otherwise.

`pipeline.views` names the views a run uses: `public` (the default, in every pipeline) or a
faster variant that changes the experiment, offered by one pipeline only (its `variants`,
pipelines/registry.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from act.errors import ActError
from pipelines import pil_ops
from pipelines.autoaugment_pil import CIFAR10Policy
from pipelines.ops.policy import POLICIES


@dataclass(frozen=True)
class ViewSpec:
    """One augmentation family's views. `resize`: the shorter side is resized to the Source's
    `resize` before cropping (file data sets); `padding`: zeros around the image before the
    crop; `flip`: a horizontal flip with p = 0.5; `strong`: the policy's name in POLICIES."""

    resize: bool
    padding: int
    flip: bool
    strong: str


FAMILIES: dict[str, ViewSpec] = {
    "cifar": ViewSpec(resize=False, padding=4, flip=True, strong="autoaugment_cifar10"),
    "digits": ViewSpec(resize=False, padding=1, flip=False, strong="autoaugment_cifar10"),
    "web": ViewSpec(resize=True, padding=0, flip=True, strong="rand_augment"),
}

# The strong policies on one PIL image, `policy(img, numpy_generator)`: the reference pipeline's.
PIL_POLICIES: dict[str, Callable] = {"autoaugment_cifar10": CIFAR10Policy(), "rand_augment": pil_ops.rand_augment}

def view_spec(family: str, where: str) -> ViewSpec:
    """The ViewSpec of augmentation family `family`; `where` names the data set for the error."""
    if family not in FAMILIES:
        raise ActError(f"{where}: augment={family!r} is not one of {', '.join(FAMILIES)}")
    return FAMILIES[family]


def file_view_spec(source, pipeline: str) -> ViewSpec:
    """The ViewSpec of a file Source for a pipeline that decodes files (dali, ffcv): a resize-and-crop family."""
    spec = view_spec(source.augment, f"data set {source.name}")
    if not spec.resize:
        raise ActError(f"pipeline.name={pipeline} builds the resize-and-crop views of image files; data set "
                       f"{source.name} has the {source.augment!r} views of arrays: use pipeline.name=tensor")
    return spec

"""The model registry: `@register("name")` on a builder puts it in MODELS.

A model module imports this module, never the package (act/models/__init__.py), which imports the
model modules to register them: timm's `_registry.py`, act/datasets/registry.py.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

Builder = Callable[..., nn.Module]

# name -> builder(num_classes, in_channels, image_size); filled by @register as the modules import.
MODELS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        MODELS[name] = builder
        return builder
    return add


def model_names() -> list[str]:
    """Every name create_model accepts, timm's as the pattern `timm:<name>`."""
    return sorted(MODELS) + ["timm:<name>"]

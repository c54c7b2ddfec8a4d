"""Model registry: `@register("name")` on a builder, `create_model(name, ...)` to build.

Builders take (num_classes, in_channels, image_size) so every model fits the data set's
channels, image size and class count. `timm:<name>` builds any timm model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from act.errors import ActError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def add(builder: Callable[..., nn.Module]):
        _REGISTRY[name] = builder
        return builder
    return add


def model_names() -> list[str]:
    return sorted(_REGISTRY) + ["timm:<name>"]


def create_model(name: str, num_classes: int, in_channels: int = 3, image_size: int = 32,
                 pretrained: str | None = None) -> nn.Module:
    """Build model `name`; `pretrained` is a local weights file (nothing is downloaded)."""
    if name.startswith("timm:"):
        from act.models.timm_backbone import create_timm

        return create_timm(name[len("timm:"):], num_classes, in_channels, pretrained)
    if name not in _REGISTRY:
        raise ActError(f"model.name={name!r} is not a known model; choose one of {', '.join(model_names())}")
    model = _REGISTRY[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    if pretrained:
        load_weights(model, pretrained, strict=True)
    return model


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A state dict from a local .pth/.pt/.bin (optionally under 'state_dict' or 'model') or .safetensors."""
    file = Path(path)
    if not file.is_file():
        raise ActError(f"model.pretrained={path}: no such file (weights are never downloaded; give a local file)")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ActError(f"model.pretrained={path} cannot be read as weights: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ActError(f"model.pretrained={path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(model: nn.Module, path: str, strict: bool) -> None:
    try:
        model.load_state_dict(read_state_dict(path), strict=strict)
    except RuntimeError as exc:
        raise ActError(f"model.pretrained={path} does not fit the model: {str(exc).splitlines()[0]}") from exc


from act.models import resnet32, sevencnn, tinycnn  # noqa: E402,F401  (registration)

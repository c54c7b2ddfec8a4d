"""Models: `create_model(name, ...)` builds any registered one (act/models/registry.py, `@register`).

Builders take (num_classes, in_channels, image_size) so every model fits the data set's
channels, image size and class count. `timm:<name>` builds any timm model. Weights only ever
come from a local file: nothing is downloaded.
"""
from __future__ import annotations

import torch.nn as nn

from act.errors import ActError
from act.inputs import NO_WEIGHTS
from act.models import resnet32, sevencnn, tinycnn  # noqa: F401  (each registers its model)
from act.models.registry import MODELS, model_names
from act.models.weights import load_weights


def create_model(name: str, num_classes: int, in_channels: int = 3, image_size: int = 32,
                 pretrained: str | None = None) -> nn.Module:
    """Build model `name`; `pretrained` is a local weights file (nothing is downloaded), or
    None or NO_WEIGHTS for none."""
    pretrained = None if pretrained == NO_WEIGHTS else pretrained
    if name.startswith("timm:"):
        from act.models.timm_backbone import create_timm

        return create_timm(name[len("timm:"):], num_classes, in_channels, pretrained)
    if name not in MODELS:
        raise ActError(f"model.name={name!r} is not a known model; choose one of {', '.join(model_names())}")
    model = MODELS[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    if pretrained:
        load_weights(model, pretrained, strict=True)
    return model

"""Invert (ImageOps.invert)."""
from __future__ import annotations

import torch


def invert(images: torch.Tensor, value: torch.Tensor | None = None) -> torch.Tensor:
    """255 - x. `value` is ignored: the op has no magnitude, the argument keeps the op convention."""
    return 255 - images

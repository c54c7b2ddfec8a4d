"""Solarize, per sample (ImageOps.solarize)."""
from __future__ import annotations

import torch


def solarize(images: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert every value at or above `threshold` (a float: the CIFAR-10 policy's are not
    integers, and PIL compares the integer pixel with the float threshold)."""
    above = images >= threshold[:, None, None, None]
    return torch.where(above, 255 - images, images)

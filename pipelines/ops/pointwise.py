"""Per-pixel ops of PIL's ImageOps, per sample: posterize, solarize, invert."""
from __future__ import annotations

import torch


def posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top `bits` bits of every channel."""
    mask = (255 - ((1 << (8 - bits.long())) - 1))[:, None, None, None]
    return (images.long() & mask).to(torch.uint8)


def solarize(images: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert every value at or above `threshold`."""
    above = images.float() >= threshold.float()[:, None, None, None]
    return torch.where(above, 255 - images, images)


def invert(images: torch.Tensor, unused: torch.Tensor | None = None) -> torch.Tensor:
    return 255 - images

"""Autocontrast, per sample and per channel (ImageOps.autocontrast, cutoff 0)."""
from __future__ import annotations

import torch


def autocontrast(images: torch.Tensor, value: torch.Tensor | None = None) -> torch.Tensor:
    """Stretch each channel's [lo, hi] to [0, 255]. `value` is ignored (no magnitude)."""
    return stretch(images, *channel_range(images))


def channel_range(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N x C x 1 x 1 lowest and highest value of each channel."""
    return images.amin(dim=(2, 3), keepdim=True), images.amax(dim=(2, 3), keepdim=True)


def stretch(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """uint8 `x` mapped as int(x * scale + offset), scale = 255 / (hi - lo), offset = -lo * scale,
    in float64 as PIL's Python computes it (float32, or torch's `255.0 / t`, which multiplies by a
    reciprocal, lands one unit off on some pixels); unchanged where hi == lo. `lo` and `hi`
    (N x C x 1 x 1, any dtype) are the channel's range: `x` may be the image or a lookup table's levels."""
    lo, hi = lo.double(), hi.double()
    scale = torch.full_like(lo, 255.0) / (hi - lo).clamp(min=1)
    offset = -lo * scale
    stretched = (x * scale + offset).clamp(0, 255).to(torch.uint8)  # .to truncates, as PIL's int()
    return torch.where(hi > lo, stretched, x)

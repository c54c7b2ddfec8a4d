"""Autocontrast, per sample and per channel (ImageOps.autocontrast, cutoff 0)."""
from __future__ import annotations

import torch


def autocontrast(images: torch.Tensor, value: torch.Tensor | None = None) -> torch.Tensor:
    """Stretch each channel's [lo, hi] to [0, 255]: int(x * scale + offset) with
    scale = 255 / (hi - lo), offset = -lo * scale, in float64 as PIL's Python computes it
    (float32, or torch's `255.0 / t`, which multiplies by a reciprocal, lands one unit off
    on some pixels); unchanged where hi == lo.
    `value` is ignored (no magnitude)."""
    x = images.double()
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    scale = torch.full_like(lo, 255.0) / (hi - lo).clamp(min=1)
    offset = -lo * scale
    stretched = (x * scale + offset).trunc().clamp(0, 255)
    return torch.where(hi > lo, stretched, x).to(torch.uint8)

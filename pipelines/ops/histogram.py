"""Histogram ops of PIL's ImageOps, per sample and per channel: autocontrast, equalize.

One histogram per (image, channel) from a single scatter-add over offset bins, then a
256-entry lookup table per (image, channel) built with PIL's rules and applied by gather.
"""
from __future__ import annotations

import torch


def histograms(images: torch.Tensor) -> torch.Tensor:
    """(N*C) x 256 counts."""
    n, c = images.shape[:2]
    flat = images.reshape(n * c, -1).long()
    return torch.zeros(n * c, 256, dtype=torch.long, device=images.device).scatter_add_(1, flat, torch.ones_like(flat))


def apply_lut(images: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    n, c = images.shape[:2]
    flat = images.reshape(n * c, -1).long()
    return lut.clamp(0, 255).gather(1, flat).to(torch.uint8).reshape(images.shape)


def autocontrast(images: torch.Tensor, unused: torch.Tensor | None = None) -> torch.Tensor:
    """Stretch each channel's [min, max] to [0, 255] (ImageOps.autocontrast, cutoff 0)."""
    n, c = images.shape[:2]
    flat = images.reshape(n * c, -1).float()
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    scale = 255.0 / (hi - lo).clamp(min=1)
    levels = torch.arange(256, device=images.device, dtype=torch.float32)[None]
    lut = (levels * scale - lo * scale).trunc().long()  # PIL: int(i * scale + offset)
    identity = levels.long().expand_as(lut)
    lut = torch.where(hi > lo, lut, identity)
    return apply_lut(images, lut)


def equalize(images: torch.Tensor, unused: torch.Tensor | None = None) -> torch.Tensor:
    """ImageOps.equalize: step = (pixels - count of the last non-empty bin) // 255;
    lut[i] = (step // 2 + pixels below i) // step; identity where step is 0."""
    hist = histograms(images)
    levels = torch.arange(256, device=images.device)
    last = torch.where(hist > 0, levels, torch.zeros_like(levels)).max(dim=1, keepdim=True).values
    step = (hist.sum(dim=1, keepdim=True) - hist.gather(1, last)) // 255
    below = hist.cumsum(dim=1) - hist
    lut = (step // 2 + below) // step.clamp(min=1)
    lut = torch.where(step > 0, lut, levels.expand_as(lut))
    return apply_lut(images, lut)

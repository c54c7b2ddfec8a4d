"""Histogram equalisation, per sample and per channel (ImageOps.equalize)."""
from __future__ import annotations

import torch


def histograms(images: torch.Tensor) -> torch.Tensor:
    """(N*C) x 256 counts, one scatter-add for the whole batch (bincount would sync on CUDA)."""
    n, c = images.shape[:2]
    flat = images.reshape(n * c, -1).long()
    counts = torch.zeros(n * c, 256, dtype=torch.long, device=images.device)
    return counts.scatter_add_(1, flat, torch.ones_like(flat))


def equalize(images: torch.Tensor, value: torch.Tensor | None = None) -> torch.Tensor:
    """PIL's rule per channel: step = (pixels - count of the highest non-empty bin) // 255;
    lut[i] = (step // 2 + pixels below i) // step; the identity where step is 0 (a channel
    with one value, or too few pixels). `value` is ignored (no magnitude)."""
    n, c = images.shape[:2]
    hist = histograms(images)
    levels = torch.arange(256, device=images.device)
    highest = torch.where(hist > 0, levels, 0).amax(dim=1, keepdim=True)
    step = (hist.sum(dim=1, keepdim=True) - hist.gather(1, highest)) // 255
    below = hist.cumsum(dim=1) - hist
    lut = torch.where(step > 0, (step // 2 + below) // step.clamp(min=1), levels).clamp(max=255)
    flat = images.reshape(n * c, -1).long()
    return lut.gather(1, flat).to(torch.uint8).reshape(images.shape)

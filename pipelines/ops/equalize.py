"""Histogram equalisation, per sample and per channel (ImageOps.equalize)."""
from __future__ import annotations

import torch

from pipelines.ops.lut import apply_lut, histograms, pixel_index


def equalize(images: torch.Tensor, value: torch.Tensor | None = None) -> torch.Tensor:
    """Each channel through its equalisation table. `value` is ignored (no magnitude)."""
    index = pixel_index(images)
    return apply_lut(equalize_lut(histograms(index)), index, images.shape)


def equalize_lut(hist: torch.Tensor) -> torch.Tensor:
    """... x 256 uint8 tables from ... x 256 counts, by PIL's rule per channel: step = (pixels - count
    of the highest non-empty bin) // 255; lut[i] = (step // 2 + pixels below i) // step; the
    identity where step is 0 (a channel with one value, or too few pixels)."""
    levels = torch.arange(256, device=hist.device, dtype=hist.dtype)
    highest = torch.where(hist > 0, levels, 0).amax(dim=-1, keepdim=True)
    step = (hist.sum(dim=-1, keepdim=True, dtype=hist.dtype) - hist.gather(-1, highest.long())) // 255
    below = hist.cumsum(dim=-1, dtype=hist.dtype) - hist
    lut = torch.where(step > 0, (step // 2 + below) // step.clamp(min=1), levels)
    return lut.clamp(max=255).to(torch.uint8)

"""The ImageOps ops, per sample (and per channel where PIL's are): invert, posterize, solarize,
equalize, autocontrast (cutoff 0)."""
from __future__ import annotations

import torch

from pipelines.ops.lut import apply_lut, histograms, pixel_index


# Invert (ImageOps.invert)

def invert(images: torch.Tensor, value: torch.Tensor | None = None) -> torch.Tensor:
    """255 - x. `value` is ignored: the op has no magnitude, the argument keeps the op convention."""
    return 255 - images


# Posterize, per sample (ImageOps.posterize)

def posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top `bits` (1..8) bits of every channel value."""
    keep = (256 - (1 << (8 - bits.long()))).to(torch.uint8)
    return images & keep[:, None, None, None]


# Solarize, per sample (ImageOps.solarize)

def solarize(images: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert every value at or above `threshold` (a float: the CIFAR-10 policy's are not
    integers, and PIL compares the integer pixel with the float threshold)."""
    above = images >= threshold[:, None, None, None]
    return torch.where(above, 255 - images, images)


# Histogram equalisation, per sample and per channel (ImageOps.equalize)

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


# Autocontrast, per sample and per channel (ImageOps.autocontrast, cutoff 0)

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

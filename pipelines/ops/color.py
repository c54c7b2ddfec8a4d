"""PIL's ImageEnhance ops, per sample: brightness, color (saturation), contrast, sharpness.

Each blends the image with a degenerate version of itself, `Image.blend(degenerate, image,
factor)`: out = degenerate + factor * (image - degenerate), in float32 as PIL computes it,
then clipped to 0..255 and truncated (not rounded), as PIL does. Degenerate images:
- brightness: black;
- color: the greyscale image (PIL's RGB -> L: (299 R + 587 G + 114 B) / 1000 in 16-bit fixed
  point, rounded), repeated over the channels; a grey image is its own greyscale;
- contrast: one grey level, int(mean of the greyscale + 0.5);
- sharpness: the 3x3 SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13, rounded), with the
  one-pixel border kept from the image.
Integer arithmetic wherever PIL's result is an integer, so CUDA (where TF32 may be on for
convolutions) gives the same bytes as the CPU.
"""
from __future__ import annotations

import torch


def blend(degenerate: torch.Tensor, images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.float()[:, None, None, None]
    d = degenerate.float()
    return (d + f * (images.float() - d)).clamp(0, 255).trunc().to(torch.uint8)


def greyscale(images: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W: PIL's convert("L") (grey images pass through)."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.int().unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[:, None]


def brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(torch.zeros_like(images), images, factor)


def color(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(greyscale(images).expand_as(images), images, factor)


def contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    grey = greyscale(images)
    mean = grey.sum(dim=(1, 2, 3), dtype=torch.int64).double() / grey[0].numel()
    level = (mean + 0.5).floor()[:, None, None, None]
    return blend(level.expand_as(images), images, factor)


def smooth(images: torch.Tensor) -> torch.Tensor:
    """ImageFilter.SMOOTH: the 3x3 weighted mean, rounded half up, on the interior only."""
    h, w = images.shape[-2:]
    x = images.int()
    total = 4 * x[..., 1:-1, 1:-1]  # the centre weighs 5: once more in the 3x3 sum below
    for dy in range(3):
        for dx in range(3):
            total = total + x[..., dy:h - 2 + dy, dx:w - 2 + dx]
    out = images.clone()
    out[..., 1:-1, 1:-1] = ((2 * total + 13) // 26).to(torch.uint8)  # floor(total / 13 + 1/2)
    return out


def sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(smooth(images), images, factor)

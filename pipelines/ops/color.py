"""PIL's ImageEnhance ops, per sample: brightness, color (saturation), contrast, sharpness.

Each blends the image with a degenerate version of itself, `Image.blend(degenerate, image,
factor)`: out = degenerate + factor * (image - degenerate), in float32 as PIL computes it,
then clipped to 0..255 and truncated (not rounded), as PIL does. Degenerate images:
- brightness: black;
- color: the greyscale image (PIL's RGB -> L: (299 R + 587 G + 114 B) / 1000 in 16-bit fixed
  point, rounded), repeated over the channels; a grey image is its own greyscale;
- contrast: one grey level per image, int(mean of the greyscale + 0.5);
- sharpness: the 3x3 SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13, rounded), with the
  one-pixel border kept from the image.
Integer arithmetic wherever PIL's result is an integer, so CUDA (where TF32 may be on for
convolutions) gives the same bytes as the CPU. Brightness and contrast blend towards one level
per image, so they are pointwise: pipelines/ops/slot.py applies them to a lookup table's levels.
"""
from __future__ import annotations

import torch


def blend(degenerate: torch.Tensor, images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """`degenerate` (integer-valued) broadcasts against `images`: a grey level per image, a grey
    image per image. PIL's ImagingBlend: int + float * (int - int) in float, so the difference
    is taken exactly in int16 and only the product and sum in float32."""
    f = factor.float()[:, None, None, None]
    d = degenerate.short()
    return (d + f * (images.short() - d)).clamp(0, 255).to(torch.uint8)  # .to truncates, as PIL


def greyscale(images: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W: PIL's convert("L") (grey images pass through)."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.int().unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[:, None]


def mean_grey(images: torch.Tensor) -> torch.Tensor:
    """N x 1 x 1 x 1: contrast's degenerate, int(mean of the greyscale + 0.5) (float64)."""
    grey = greyscale(images)
    mean = grey.sum(dim=(1, 2, 3), dtype=torch.int64).double() / grey[0].numel()
    return (mean + 0.5).floor()[:, None, None, None]


def brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(images.new_zeros(()), images, factor)


def color(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(greyscale(images), images, factor)


def contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(mean_grey(images), images, factor)


def smooth(images: torch.Tensor) -> torch.Tensor:
    """ImageFilter.SMOOTH: the 3x3 weighted mean, rounded half up, on the interior only; int16
    (13 x 255 fits) and the 3x3 sum as a column sum then a row sum."""
    x = images.short()
    columns = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    total = columns[..., :-2] + columns[..., 1:-1] + columns[..., 2:] + 4 * x[..., 1:-1, 1:-1]  # centre weighs 5
    out = images.clone()
    out[..., 1:-1, 1:-1] = ((total + 6) // 13).to(torch.uint8)  # floor(total / 13 + 1/2): total is whole
    return out


def sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(smooth(images), images, factor)

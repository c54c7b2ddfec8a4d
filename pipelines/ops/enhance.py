"""PIL's ImageEnhance ops, per sample: blend each image with a degenerate version of itself.

out = degenerate + factor * (image - degenerate), truncated and clipped to 0..255 as PIL's
blend does. Degenerate images: black (brightness), greyscale (color), the mean grey
(contrast), the 3x3 smooth filter (sharpness, with the border pixels kept).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def blend(degenerate: torch.Tensor, images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.float()[:, None, None, None]
    out = degenerate.float() + f * (images.float() - degenerate.float())
    return out.clamp(0, 255).floor().to(torch.uint8)


def greyscale(images: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L (ITU-R 601-2 in 16-bit fixed point); grey images pass through. N x 1 x H x W."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.int().unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[:, None]


def brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(torch.zeros_like(images), images, factor)


def color(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(greyscale(images).expand_as(images), images, factor)


def contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = greyscale(images).float().mean(dim=(1, 2, 3), keepdim=True)
    degenerate = (mean + 0.5).floor().expand_as(images)  # PIL: int(mean + 0.5)
    return blend(degenerate, images, factor)


SMOOTH = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13


def sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    n, c, h, w = images.shape
    kernel = SMOOTH.to(images.device).expand(c, 1, 3, 3)
    smooth = F.conv2d(images.float(), kernel, groups=c).round()  # (h-2) x (w-2): the interior
    degenerate = images.float().clone()
    degenerate[:, :, 1:-1, 1:-1] = smooth
    return blend(degenerate, images, factor)

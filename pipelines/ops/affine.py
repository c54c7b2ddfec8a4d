"""Shear, translate and rotate, per sample, as PIL's affine transform computes them.

Each op builds PIL's 6-number inverse map (output pixel centre -> input position) per
sample, and one `grid_sample` resamples the batch. Nearest for translate and rotate (PIL's
default there), bicubic for shears (as the CIFAR-10 policy asks); outside the image, grey 128.
PIL's bicubic uses a = -0.5 and grid_sample's a = -0.75, so sheared pixels differ a little.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FILL = 128.0


def warp(images: torch.Tensor, matrix: torch.Tensor, mode: str) -> torch.Tensor:
    """Resample an N x C x H x W uint8 batch through per-sample PIL affine maps (N x 6)."""
    n, c, h, w = images.shape
    dev = images.device
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32) + 0.5,
                            torch.arange(w, device=dev, dtype=torch.float32) + 0.5, indexing="ij")
    a, b, cc, d, e, f = (matrix[:, i, None, None].float() for i in range(6))
    x_in = a * xs + b * ys + cc
    y_in = d * xs + e * ys + f
    if mode == "nearest":
        # PIL samples the pixel whose area holds the position (floor), grid_sample rounds: shift.
        x_in, y_in = torch.floor(x_in) + 0.5, torch.floor(y_in) + 0.5
    grid = torch.stack([2 * x_in / w - 1, 2 * y_in / h - 1], dim=-1)
    inside = ((x_in >= 0) & (x_in < w) & (y_in >= 0) & (y_in < h))[:, None]
    sampled = F.grid_sample(images.float(), grid, mode=mode, padding_mode="border", align_corners=False)
    out = torch.where(inside, sampled, torch.full_like(sampled, FILL))
    return out.round().clamp(0, 255).to(torch.uint8)


def _matrix(n: int, device, **entries: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(n, 6, device=device)
    m[:, 0] = 1
    m[:, 4] = 1
    for i, key in enumerate("abcdef"):
        if key in entries:
            m[:, i] = entries[key]
    return m


def shear_x(images: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    return warp(images, _matrix(len(images), images.device, b=amount), "bicubic")


def shear_y(images: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    return warp(images, _matrix(len(images), images.device, d=amount), "bicubic")


def translate_x(images: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    """Shift by `fraction` of the width (PIL: output x samples input x + fraction * width)."""
    return warp(images, _matrix(len(images), images.device, c=fraction * images.shape[-1]), "nearest")


def translate_y(images: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    return warp(images, _matrix(len(images), images.device, f=fraction * images.shape[-2]), "nearest")


def rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise rotation about the centre, as PIL's Image.rotate builds its map."""
    h, w = images.shape[-2:]
    angle = -degrees.float() * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    cx, cy = w / 2.0, h / 2.0
    c = cos * -cx + sin * -cy + cx
    f = -sin * -cx + cos * -cy + cy
    m = torch.stack([cos, sin, c, -sin, cos, f], dim=1)
    return warp(images, m, "nearest")

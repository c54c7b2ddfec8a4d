"""Shear, translate and rotate per sample, sampled exactly as PIL's Image.transform(AFFINE).

Each op builds PIL's 6-number inverse map per sample (output pixel centre -> input point:
x_in = a x + b y + c, y_in = d x + e y + f, pixel centres at +0.5) and `warp` resamples the
batch with one index computation; outside the input image the output is grey 128.

Two resampling rules, because the reference policies use both (bicubic for the CIFAR-10
policy's shears, as CIFAR10Policy asks; nearest, PIL's default, for everything else):
- nearest: PIL reads the input pixel that holds the point (floor, not round). For a map with
  shear or rotation it does so in 16.16 fixed point, for a pure translation in double
  precision; both are reproduced, so the same pixel is picked.
- bicubic: PIL's transform filter is Keys' cubic with a = -1 (not resize's -0.5), edge
  pixels repeated, the result truncated; reproduced tap by tap in float64, like PIL's doubles.
Why not F.affine_grid + F.grid_sample: its nearest rounds where PIL floors, its bicubic uses
a = -0.75, and its coordinates are float32, so it misses PIL by a few grey levels on average.
The 16-tap gather costs little next to the networks this feeds.
"""
from __future__ import annotations

import math

import torch

FILL = 128
ONE = 65536  # PIL's 16.16 fixed point


def warp(images: torch.Tensor, matrix: torch.Tensor, resample: str) -> torch.Tensor:
    """Resample an N x C x H x W uint8 batch through per-sample PIL maps (N x 6, float64)."""
    n, c, h, w = images.shape
    if resample == "nearest":
        x_in, y_in = nearest_source(matrix, h, w)
        inside = (x_in >= 0) & (x_in < w) & (y_in >= 0) & (y_in < h)
        out = gather(images, y_in.clamp(0, h - 1), x_in.clamp(0, w - 1))
    elif resample == "bicubic":
        x_in, y_in = source_points(matrix, h, w)
        inside = (x_in >= 0) & (x_in < w) & (y_in >= 0) & (y_in < h)
        out = bicubic(images, x_in, y_in).clamp(0, 255).trunc().to(torch.uint8)
    else:
        raise ValueError(f"resample must be nearest or bicubic, not {resample!r}")
    return torch.where(inside[:, None], out, FILL)


def source_points(matrix: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """N x H x W input points (float64) of the output pixel centres."""
    a, b, c, d, e, f = (matrix[:, i, None, None] for i in range(6))
    x = torch.arange(w, device=matrix.device, dtype=torch.float64) + 0.5
    y = torch.arange(h, device=matrix.device, dtype=torch.float64)[:, None] + 0.5
    return a * x + b * y + c, d * x + e * y + f


def nearest_source(matrix: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """N x H x W integer input pixel (x, y) that PIL's nearest filter reads."""
    a, b, c, d, e, f = (matrix[:, i, None, None] for i in range(6))
    x = torch.arange(w, device=matrix.device, dtype=torch.float64)
    y = torch.arange(h, device=matrix.device, dtype=torch.float64)[:, None]
    # Pure translation/scale (ImagingScaleAffine): floor of the double-precision point.
    x_scaled = torch.floor(a * (x + 0.5) + c).long().expand(-1, h, w)
    y_scaled = torch.floor(e * (y + 0.5) + f).long().expand(-1, h, w)
    # Any other map (affine_fixed): integer steps of 16.16 fixed-point coefficients.
    def fix(v: torch.Tensor) -> torch.Tensor:
        return torch.floor(v * ONE + 0.5).long()
    xi, yi = x.long(), y.long()
    x_fixed = (fix(c + a * 0.5 + b * 0.5) + yi * fix(b) + xi * fix(a)) >> 16
    y_fixed = (fix(f + d * 0.5 + e * 0.5) + yi * fix(e) + xi * fix(d)) >> 16
    scale_only = (b == 0) & (d == 0)
    return torch.where(scale_only, x_scaled, x_fixed), torch.where(scale_only, y_scaled, y_fixed)


def gather(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """images[i, :, rows[i], cols[i]] for N x H x W index maps (one flat gather)."""
    n, c, h, w = images.shape
    index = (rows * w + cols).reshape(n, 1, -1).expand(n, c, -1)
    return images.reshape(n, c, -1).gather(2, index).reshape(n, c, *rows.shape[1:])


def cubic(v1: torch.Tensor, v2: torch.Tensor, v3: torch.Tensor, v4: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """PIL's BICUBIC macro (Geometry.c), term for term so that float64 rounding matches."""
    p2 = -v1 + v3
    p3 = 2 * (v1 - v2) + v3 - v4
    p4 = -v1 + v2 - v3 + v4
    return v2 + d * (p2 + d * (p3 + d * p4))


def bicubic(images: torch.Tensor, x_in: torch.Tensor, y_in: torch.Tensor) -> torch.Tensor:
    """N x C x H x W float64: 4 x 4 taps around each point, edges repeated."""
    h, w = images.shape[-2:]
    x, y = x_in - 0.5, y_in - 0.5
    x0, y0 = x.floor(), y.floor()
    dx, dy = (x - x0)[:, None], (y - y0)[:, None]
    cols = [(x0.long() + k).clamp(0, w - 1) for k in (-1, 0, 1, 2)]
    rows = [(y0.long() + k).clamp(0, h - 1) for k in (-1, 0, 1, 2)]
    row_values = [cubic(*(gather(images, r, col).double() for col in cols), dx) for r in rows]
    return cubic(*row_values, dy)


def identity(n: int, device: torch.device) -> torch.Tensor:
    """N x 6 identity maps, filled on the device (a tensor built from a list would be a blocking copy)."""
    matrix = torch.zeros(n, 6, dtype=torch.float64, device=device)
    matrix[:, 0] = 1
    matrix[:, 4] = 1
    return matrix


def shear_x(images: torch.Tensor, amount: torch.Tensor, resample: str) -> torch.Tensor:
    """PIL map (1, amount, 0, 0, 1, 0): row y reads x + amount * y."""
    matrix = identity(len(images), images.device)
    matrix[:, 1] = amount
    return warp(images, matrix, resample)


def shear_y(images: torch.Tensor, amount: torch.Tensor, resample: str) -> torch.Tensor:
    """PIL map (1, 0, 0, amount, 1, 0)."""
    matrix = identity(len(images), images.device)
    matrix[:, 3] = amount
    return warp(images, matrix, resample)


def translate_x(images: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    """PIL map (1, 0, fraction * width, 0, 1, 0): the image moves left by that much."""
    matrix = identity(len(images), images.device)
    matrix[:, 2] = fraction * images.shape[-1]
    return warp(images, matrix, "nearest")


def translate_y(images: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    """PIL map (1, 0, 0, 0, 1, fraction * height): the image moves up by that much."""
    matrix = identity(len(images), images.device)
    matrix[:, 5] = fraction * images.shape[-2]
    return warp(images, matrix, "nearest")


def rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise about the image centre, nearest: Image.rotate's map, built as PIL
    builds it (angle mod 360, cos and sin rounded to 15 decimals)."""
    h, w = images.shape[-2:]
    angle = -torch.remainder(degrees, 360) * (math.pi / 180)
    cos, sin = torch.round(torch.cos(angle), decimals=15), torch.round(torch.sin(angle), decimals=15)
    cx, cy = w / 2.0, h / 2.0
    c = cos * -cx + sin * -cy + cx
    f = -sin * -cx + cos * -cy + cy
    return warp(images, torch.stack([cos, sin, c, -sin, cos, f], dim=1), "nearest")

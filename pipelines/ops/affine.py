"""Shear, translate and rotate per sample, sampled exactly as PIL's Image.transform(AFFINE).

Each op builds PIL's 6-number inverse map per sample (output pixel centre -> input point:
x_in = a x + b y + c, y_in = d x + e y + f, pixel centres at +0.5; `*_map` functions, N x 6
float64) and resamples the batch with one index computation; outside the input image the
output is grey 128. The maps are separate from the resampling so that a policy can warp a
batch whose samples each have their own op (pipelines/ops/slot.py) in one pass.

Two resampling rules, because the reference policies use both (bicubic for the shears, as
CIFAR10Policy asks; nearest, PIL's default, for translations and rotations):
- `warp_nearest`: PIL reads the input pixel that holds the point (floor, not round). For a map
  with shear or rotation it does so in 16.16 fixed point, for a pure translation in double
  precision; both are reproduced, so the same pixel is picked.
- `warp_shear`: PIL's transform filter is Keys' cubic with a = -1 (not resize's -0.5), edge
  pixels repeated, the result truncated, in doubles. A shear moves one axis only: the other
  coordinate lands exactly on pixel centres (fraction 0), where PIL's 4 x 4 kernel returns
  its second row (or column) exactly. So 4 taps along the moving axis give PIL's bytes for
  a quarter of the reads; reproduced term for term in float64, like PIL's doubles.
Why not F.affine_grid + F.grid_sample: its nearest rounds where PIL floors, its bicubic uses
a = -0.75, and its coordinates are float32, so it misses PIL by a few grey levels on average.
"""
from __future__ import annotations

import math

import torch

from pipelines.augment_table import GREY_FILL
ONE = 65536  # PIL's 16.16 fixed point


def warp_nearest(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Resample an N x C x H x W uint8 batch through per-sample PIL maps (N x 6, float64), nearest."""
    h, w = images.shape[-2:]
    x_in, y_in = nearest_source(matrix, h, w)
    inside = (x_in >= 0) & (x_in < w) & (y_in >= 0) & (y_in < h)
    out = gather(images, y_in.clamp(0, h - 1) * w + x_in.clamp(0, w - 1))
    return torch.where(inside[:, None], out, GREY_FILL)


def nearest_source(matrix: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """N x H x W int32 input pixel (x, y) that PIL's nearest filter reads."""
    a, b, c, d, e, f = (matrix[:, i, None, None] for i in range(6))
    x = torch.arange(w, device=matrix.device, dtype=torch.float64)
    y = torch.arange(h, device=matrix.device, dtype=torch.float64)[:, None]
    # Pure translation/scale (ImagingScaleAffine): floor of the double-precision point.
    x_scaled = torch.floor(a * (x + 0.5) + c).int()
    y_scaled = torch.floor(e * (y + 0.5) + f).int()
    # Any other map (affine_fixed): integer steps of 16.16 fixed-point coefficients, in C ints as PIL.
    def fix(v: torch.Tensor) -> torch.Tensor:
        return torch.floor(v * ONE + 0.5).int()
    xi, yi = x.int(), y.int()
    x_fixed = (fix(c + a * 0.5 + b * 0.5) + yi * fix(b) + xi * fix(a)) >> 16
    y_fixed = (fix(f + d * 0.5 + e * 0.5) + yi * fix(e) + xi * fix(d)) >> 16
    scale_only = (b == 0) & (d == 0)
    return torch.where(scale_only, x_scaled, x_fixed), torch.where(scale_only, y_scaled, y_fixed)


def gather(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """images[i, :].flatten()[index[i]] for N x ... flat pixel indices (int32 or int64), as one
    indexing whose index broadcasts over the channels (a gather would need it copied per channel)."""
    n, c = images.shape[:2]
    samples = torch.arange(n, device=images.device)[:, None, None]
    channels = torch.arange(c, device=images.device)[None, :, None]
    out = images.reshape(n, c, -1)[samples, channels, index.reshape(n, 1, -1)]
    return out.reshape(n, c, *index.shape[1:])


def cubic(v1: torch.Tensor, v2: torch.Tensor, v3: torch.Tensor, v4: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """PIL's BICUBIC macro (Geometry.c): v2 + d (p2 + d (p3 + d p4)) with p2 = v3 - v1,
    p3 = 2 (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4. The taps are int16, so the p's are
    exact integers (computed with shared differences: p4 = -(a + b), p3 = a + (a + b)), and the
    float64 steps run in PIL's order (p3 + d p4 = p3 - d (a + b) exactly): PIL's doubles."""
    a, b = v1 - v2, v3 - v4
    s = a + b
    return v2 + d * ((v3 - v1) + d * ((a + s) - d * s))


def warp_shear(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Bicubic through per-sample maps that move one axis only, x_in = x + b y or y_in = y + d x
    (shears and the identity; nothing else): samples with d != 0 are interpolated along y, the
    others along x, 4 taps each, edges repeated."""
    n, c, h, w = images.shape
    along_y = matrix[:, 3] != 0
    moving = source_points(torch.where(along_y[:, None], matrix[:, 3:], matrix[:, :3]), h, w)
    size = torch.where(along_y, h, w).int()[:, None, None]
    inside = (moving >= 0) & (moving < size)
    t = moving - 0.5
    start = t.floor()
    d = (t - start)[:, None]
    # The taps start-1..start+2 read an image padded with 2 repeated pixels on each side, so one
    # clamp of `start` keeps them all inside (points outside the image are filled anyway).
    stride = torch.where(along_y, w + 4, 1).int()[:, None, None]
    y = torch.arange(2, h + 2, device=images.device, dtype=torch.int32)[:, None]
    x = torch.arange(2, w + 2, device=images.device, dtype=torch.int32)
    fixed = torch.where(along_y[:, None, None], x, y * (w + 4))
    first = fixed + (start.int().clamp(min=-1).minimum(size - 1) + 1) * stride
    steps = stride[:, None] * torch.arange(4, device=images.device, dtype=torch.int32)[:, None, None]
    taps = gather(pad_edges(images, 2), first[:, None] + steps).short()  # N x C x 4 x H x W
    out = cubic(*taps.unbind(2), d).to(torch.int16).clamp_(0, 255).to(torch.uint8)  # PIL truncates, as .to does
    return torch.where(inside[:, None], out, GREY_FILL)


def pad_edges(images: torch.Tensor, pad: int) -> torch.Tensor:
    """N x C x (H + 2 pad) x (W + 2 pad): edge pixels repeated (F.pad's replicate mode lacks uint8 on some devices)."""
    h, w = images.shape[-2:]
    rows = torch.arange(-pad, h + pad, device=images.device).clamp(0, h - 1)
    cols = torch.arange(-pad, w + pad, device=images.device).clamp(0, w - 1)
    return images.index_select(2, rows).index_select(3, cols)


def source_points(matrix: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """... x H x W input coordinates (float64) of the output pixel centres through the rows
    (... x 3: a, b, c) of a map: a (x + 0.5) + b (y + 0.5) + c, in PIL's order."""
    a, b, c = (matrix[..., i, None, None] for i in range(3))
    x = torch.arange(w, device=matrix.device, dtype=torch.float64) + 0.5
    y = torch.arange(h, device=matrix.device, dtype=torch.float64)[:, None] + 0.5
    return a * x + b * y + c


IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def identity(n: int, device: torch.device) -> torch.Tensor:
    """N x 6 identity maps, made by device ops (a tensor built from a list, or an entry set from
    a Python number, would be a blocking host-to-device copy)."""
    return torch.stack([torch.full((n,), v, dtype=torch.float64, device=device) for v in IDENTITY], dim=1)


def with_entry(k: int, value: torch.Tensor) -> torch.Tensor:
    """Identity maps with entry k (of a..f) set per sample."""
    return torch.stack([value if i == k else torch.full_like(value, v) for i, v in enumerate(IDENTITY)], dim=1)


def shear_x_map(amount: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(1, amount, 0, 0, 1, 0): row y reads x + amount * y."""
    return with_entry(1, amount)


def shear_y_map(amount: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(1, 0, 0, amount, 1, 0)."""
    return with_entry(3, amount)


def translate_x_map(fraction: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(1, 0, fraction * width, 0, 1, 0): the image moves left by that much."""
    return with_entry(2, fraction * w)


def translate_y_map(fraction: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(1, 0, 0, 0, 1, fraction * height): the image moves up by that much."""
    return with_entry(5, fraction * h)


def rotate_map(degrees: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Counter-clockwise about the image centre: Image.rotate's map, built as PIL builds it
    (angle mod 360, cos and sin rounded to 15 decimals)."""
    angle = -torch.remainder(degrees, 360) * (math.pi / 180)
    cos, sin = torch.round(torch.cos(angle), decimals=15), torch.round(torch.sin(angle), decimals=15)
    cx, cy = w / 2.0, h / 2.0
    c = cos * -cx + sin * -cy + cx
    f = -sin * -cx + cos * -cy + cy
    return torch.stack([cos, sin, c, -sin, cos, f], dim=1)


def shear_x(images: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    return warp_shear(images, shear_x_map(amount, *images.shape[-2:]))


def shear_y(images: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    return warp_shear(images, shear_y_map(amount, *images.shape[-2:]))


def translate_x(images: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    return warp_nearest(images, translate_x_map(fraction, *images.shape[-2:]))


def translate_y(images: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    return warp_nearest(images, translate_y_map(fraction, *images.shape[-2:]))


def rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    return warp_nearest(images, rotate_map(degrees, *images.shape[-2:]))

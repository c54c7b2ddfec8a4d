"""Small real-looking images and the conversions the op tests share (no pytest here:
tests/cuda_checks.py runs without it)."""
from __future__ import annotations

import numpy as np
import torch

from pipelines.augment_table import OPS as SPECS


def scenes(n=8, size=32, seed=0):
    """Real-looking RGB images: colour gradients, a bright disc, a dark bar, sensor-like noise;
    plus three edge cases for the histogram ops: a flat image, two levels, a narrow range."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = []
    for _ in range(n):
        base = rs.uniform(20, 120, 3)[None, None] + rs.uniform(0, 3, 3)[None, None] * (xx + yy)[..., None]
        cy, cx, r = rs.uniform(8, 24), rs.uniform(8, 24), rs.uniform(4, 9)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None] * rs.uniform(60, 120, 3)[None, None]
        bar = np.zeros((size, size, 1), np.float32)
        y0 = rs.randint(0, size - 6)
        bar[y0:y0 + 5] = -rs.uniform(20, 60)
        texture = rs.normal(0, 6, (size, size, 3))
        out.append(np.clip(base + disc + bar + texture, 0, 255).astype(np.uint8))
    flat = np.full((size, size, 3), 77, np.uint8)
    two_levels = np.where((xx < size / 2)[..., None], 40, 200).repeat(3, axis=-1).astype(np.uint8)
    narrow = (100 + (xx + yy) // 16)[..., None].repeat(3, axis=-1).astype(np.uint8)
    return np.stack(out + [flat, two_levels, narrow])


IMAGES = scenes()


def to_batch(images: np.ndarray) -> torch.Tensor:
    """N x H x W x C (or N x H x W) numpy -> N x C x H x W tensor."""
    images = images[..., None] if images.ndim == 3 else images
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def aa_value(name: str, magnitude: float, sign: int) -> float:
    """The tensor op's parameter for pil_op(name, img, magnitude, sign)."""
    spec = SPECS[name]
    return spec.offset + float(magnitude) * (sign if spec.directed else 1)

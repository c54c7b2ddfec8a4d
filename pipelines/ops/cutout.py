"""Cutout, per sample, as pipelines/pil_ops.py draws it: rows and columns
[centre - side // 2, centre + side // 2) clipped to the image, filled with the table's
CUTOUT_FILL, (125, 122, 113)."""
from __future__ import annotations

import torch

from pipelines.augment_table import CUTOUT_FILL


def cutout(images: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """`box` is N x 3: (side in pixels, centre x, centre y), whole numbers (float64); side 0 cuts nothing."""
    n, c, h, w = images.shape
    half = torch.div(box[:, :1], 2, rounding_mode="floor")
    in_x = covered(box[:, 1:2], half, w, images.device)
    in_y = covered(box[:, 2:3], half, h, images.device)
    inside = in_y[:, None, :, None] & in_x[:, None, None, :]
    return torch.where(inside, fill_colour(c, images.device)[None, :, None, None], images)


def fill_colour(channels: int, device: torch.device) -> torch.Tensor:
    """C uint8, made by device ops: `torch.tensor(CUTOUT_FILL)` would be a blocking host-to-device copy per call."""
    return torch.stack([torch.full((), v, dtype=torch.uint8, device=device) for v in CUTOUT_FILL[:channels]])


def covered(centre: torch.Tensor, half: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """N x size: the pixels of one axis inside [centre - half, centre + half), clipped."""
    pixels = torch.arange(size, device=device)
    return (pixels >= (centre - half).clamp(min=0)) & (pixels < (centre + half).clamp(max=size))

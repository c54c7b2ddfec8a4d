"""Cutout, per sample: a grey (128) square, as pipelines/pil_ops.py draws it with ImageDraw."""
from __future__ import annotations

import torch

FILL = 128


def cutout(images: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """`box` is N x 3: (side in pixels, centre x, centre y), float64.

    PIL's rectangle((x0, y0, x1, y1)) with float corners fills columns int(x0)..int(x1) and
    rows int(y0)..int(y1), both ends included; the corners are clipped to the image first.
    """
    h, w = images.shape[-2:]
    half = box[:, :1] / 2
    in_x = covered(box[:, 1:2], half, w, images.device)
    in_y = covered(box[:, 2:3], half, h, images.device)
    inside = in_y[:, None, :, None] & in_x[:, None, None, :]
    return torch.where(inside, torch.full_like(images, FILL), images)


def covered(centre: torch.Tensor, half: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """N x size: the pixels of one axis that the square covers."""
    low = (centre - half).clamp(min=0).floor()
    high = (centre + half).clamp(max=size).floor()
    pixels = torch.arange(size, device=device)
    return (pixels >= low) & (pixels <= high)

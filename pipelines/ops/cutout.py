"""Cutout, per sample: a grey (128) square at a random centre."""
from __future__ import annotations

import torch

FILL = 128


def cutout(images: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """`box` is N x 3: (side in pixels, centre x, centre y); pixels whose centre lies in the
    square are set to 128 (the square is clipped at the image border)."""
    h, w = images.shape[-2:]
    side, cx, cy = (box[:, i, None, None].float() for i in range(3))
    ys = torch.arange(h, device=images.device, dtype=torch.float32)[None, :, None] + 0.5
    xs = torch.arange(w, device=images.device, dtype=torch.float32)[None, None, :] + 0.5
    inside = ((xs - cx).abs() <= side / 2) & ((ys - cy).abs() <= side / 2)
    return torch.where(inside[:, None], torch.full_like(images, FILL), images)

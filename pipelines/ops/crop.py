"""Random crop with zero padding, per sample, as two gathers (rows, then columns)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """RandomCrop(size, padding) for every image of an N x C x H x W batch: each image its own
    offset in [0, 2 * padding] on each axis, zero outside the image."""
    n, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), device=dev, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=dev, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None].expand(n, c, h, w + 2 * padding)
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :].expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)

"""Random crop with zero padding, per sample, as one indexing of a strided window view."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """RandomCrop(size, padding) for every image of an N x C x H x W batch: each image its own
    offset in [0, 2 * padding] on each axis, zero outside the image.

    The padded batch is viewed (no copy) as N x C x (2p+1) x (2p+1) x H x W windows; picking
    each image's window is a single advanced-indexing copy, on any device, with no host sync.
    """
    n, offsets = len(images), 2 * padding + 1
    dy = torch.randint(0, offsets, (n,), device=images.device, generator=generator)
    dx = torch.randint(0, offsets, (n,), device=images.device, generator=generator)
    return crop_at(images, padding, dy, dx)


def crop_at(images: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """The crop of `batch_crop` at given offsets (N each, in [0, 2 * padding], into the padded image)."""
    n, c, h, w = images.shape
    offsets = 2 * padding + 1
    padded = F.pad(images, (padding, padding, padding, padding))
    sn, sc, sh, sw = padded.stride()
    windows = padded.as_strided((n, c, offsets, offsets, h, w), (sn, sc, sh, sw, sh, sw))
    return windows[torch.arange(n, device=images.device), :, dy, dx]

"""The weak view's ops, per sample: random crop with zero padding (one indexing of a strided
window view) and the horizontal flip."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pipelines.ops.masked import use_static


# Random crop with zero padding, per sample, as one indexing of a strided window view

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


# Horizontal flip, per sample

def batch_flip_lr(images: torch.Tensor, generator: torch.Generator, p: float = 0.5,
                  static: bool | None = None) -> torch.Tensor:
    """Mirror each image of an N x C x H x W batch with probability p.

    `static` (see masked.use_static): one `where` over the batch, no host sync; otherwise only
    the flipped images are copied."""
    return flip_where(images, torch.rand(len(images), device=images.device, generator=generator) < p, static)


def flip_where(images: torch.Tensor, flip: torch.Tensor, static: bool | None = None) -> torch.Tensor:
    """Mirror the images where `flip` (N bools) is set."""
    if use_static(static, images.device):
        return torch.where(flip[:, None, None, None], images.flip(-1), images)
    picked = flip.nonzero().squeeze(1)
    out = images.clone()
    out[picked] = images[picked].flip(-1)
    return out

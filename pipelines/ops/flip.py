"""Horizontal flip, per sample."""
from __future__ import annotations

import torch

from pipelines.ops.masked import use_static


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

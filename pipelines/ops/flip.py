"""Horizontal flip, per sample."""
from __future__ import annotations

import torch


def batch_flip_lr(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image of an N x C x H x W batch with probability p."""
    flip = torch.rand(len(images), device=images.device, generator=generator) < p
    if images.device.type == "cpu":  # copy only the flipped images (a sync is free on a CPU)
        picked = flip.nonzero().squeeze(1)
        out = images.clone()
        out[picked] = images[picked].flip(-1)
        return out
    return torch.where(flip[:, None, None, None], images.flip(-1), images)

"""Per-sample, per-channel lookup tables on uint8 batches: a pointwise op of a uint8 image is a
256-entry table per channel, computed once on the `levels` 0..255 and applied by one gather, so
several pointwise ops with per-sample parameters cost one pass over the pixels."""
from __future__ import annotations

import torch


def levels(n: int, c: int, device: torch.device) -> torch.Tensor:
    """N x C x 1 x 256 uint8: 0..255 shaped as a batch, so that an op of images runs on it unchanged."""
    return torch.arange(256, dtype=torch.uint8, device=device).expand(n, c, 1, 256)


def pixel_index(images: torch.Tensor) -> torch.Tensor:
    """(N*C) x (H*W) int64: each channel's pixels as the indices that scatter_add and gather take."""
    n, c = images.shape[:2]
    return images.reshape(n * c, -1).long()


def histograms(index: torch.Tensor) -> torch.Tensor:
    """(N*C) x 256 int32 counts of `pixel_index` rows, one scatter-add (bincount would sync on CUDA)."""
    counts = torch.zeros(len(index), 256, dtype=torch.int32, device=index.device)
    return counts.scatter_add_(1, index, torch.ones((), dtype=torch.int32, device=index.device).expand_as(index))


def apply_lut(lut: torch.Tensor, index: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Images of `shape` whose `pixel_index` is `index`, each channel through its N x C x (1 x) 256 table."""
    return lut.reshape(len(index), 256).gather(1, index).reshape(shape)

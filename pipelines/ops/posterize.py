"""Posterize, per sample (ImageOps.posterize)."""
from __future__ import annotations

import torch


def posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top `bits` (1..8) bits of every channel value."""
    keep = (256 - (1 << (8 - bits.long()))).to(torch.uint8)
    return images & keep[:, None, None, None]

"""Applying an op to the samples a mask picks, each with its own parameter."""
from __future__ import annotations

from typing import Callable

import torch


def apply_where(op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], images: torch.Tensor,
                mask: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """`op(images[i], param[i])` where mask[i], images[i] elsewhere.

    On CUDA the op runs on the whole batch and a `where` keeps the picked samples: no host
    sync, static shapes. On the CPU, where a sync costs nothing, only the picked samples are
    computed, which saves most of the arithmetic, and written back in place: callers pass a
    batch they own (the policies copy their input once).
    """
    if images.device.type == "cpu":
        picked = mask.nonzero().squeeze(1)
        if len(picked):
            images[picked] = op(images[picked], param[picked])
        return images
    return torch.where(mask[:, None, None, None], op(images, param), images)

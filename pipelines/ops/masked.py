"""The one convention every op follows: `op(images, value) -> images`, computed for the whole
batch with a parameter per sample, and `apply_masked` keeps its result where a mask is true."""
from __future__ import annotations

from typing import Callable

import torch

Op = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def apply_masked(op: Op, images: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """`op(images[i], value[i])` where `mask[i]`, `images[i]` elsewhere (a new tensor).

    On CUDA the op runs on the whole batch and a `where` picks: no host sync, static shapes.
    On the CPU a sync costs nothing, so only the picked samples are computed (a policy's
    mask picks about 1/15 of the batch): same result, a fraction of the arithmetic.
    """
    if images.device.type == "cpu":
        return apply_to_picked(op, images, mask, value)
    return apply_where(op, images, mask, value)


def apply_where(op: Op, images: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return torch.where(mask[:, None, None, None], op(images, value), images)


def apply_to_picked(op: Op, images: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    picked = mask.nonzero().squeeze(1)
    if len(picked) == 0:
        return images
    return images.index_copy(0, picked, op(images[picked], value[picked]))

"""The one convention every op follows: `op(images, value) -> images`, computed for the whole
batch with a parameter per sample; `apply_to_picked` runs it on the samples a mask picks, and
`use_static` is the rule that chooses between that and a static-shape computation."""
from __future__ import annotations

from typing import Callable

import torch

Op = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def use_static(static: bool | None, device: torch.device) -> bool:
    """An explicit choice, else static shapes on any device but the CPU: a GPU must not wait on
    a host sync (or be captured in a CUDA graph), while on the CPU a sync costs nothing and
    computing only the picked samples saves most of the arithmetic."""
    return static if static is not None else device.type != "cpu"


def apply_to_picked(op: Op, images: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """`op(images[i], value[i])` where `mask[i]`, `images[i]` elsewhere (a new tensor, or `images`
    itself when nothing is picked). `nonzero` syncs with the host: the CPU path."""
    picked = mask.nonzero().squeeze(1)
    if len(picked) == 0:
        return images
    return images.index_copy(0, picked, op(images[picked], value[picked]))

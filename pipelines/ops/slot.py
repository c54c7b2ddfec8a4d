"""One op position of a policy (a "slot") applied to a batch: each sample has at most one op,
named by `op` (an index into OPS; NONE where the slot does not fire) with its own parameter.

`Draws` holds every slot of a batch as tensors; `apply_draws` applies them, one of two ways
that give the same bytes (tests/test_ops.py checks both against PIL and against each other):
- `apply_picked`: each op runs on the samples that picked it (`nonzero`, a host sync: free on
  the CPU, where computing about 1/15 of the batch per op is the fastest way).
- `apply_static`: static shapes, no host sync, no Python branch on a tensor value, no tensor
  made from Python data, so it compiles with fullgraph=True and can be captured in a CUDA graph.
  Since a sample's slot has one op, a pass that holds several ops is the identity for the
  samples that picked none of them, and passes commute; each slot runs five passes over the
  batch instead of one per op:
    1. `lookup`: invert, posterize, solarize, brightness, contrast (a blend towards one grey
       per image), autocontrast and equalize (tables from each channel's range or histogram)
       are pointwise: one N x C x 256 table, one gather;
    2. `enhance`: color and sharpness blend towards a per-pixel degenerate image: one blend;
    3. translations and rotation: one nearest warp with a map per sample (identity elsewhere);
    4. shears: one 4-tap bicubic warp along each sample's moving axis;
    5. cutout (RandAugment): a box of side 0 elsewhere.
  The statistics a pass needs (histograms, ranges, the greyscale) are those of its input, which
  for the samples it changes is the slot's input: so the greyscale is made once per slot, for
  contrast (its mean) and color.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from pipelines.ops import affine, color
from pipelines.ops.cutout import cutout
from pipelines.ops.imageops import (autocontrast, channel_range, equalize, equalize_lut, invert, posterize, solarize,
                                    stretch)
from pipelines.ops.lut import apply_lut, histograms, levels, pixel_index
from pipelines.ops.masked import Op, apply_to_picked, use_static

# Every op a policy can pick, as pipelines/augment_table.py names and orders them; the position
# is the op's index in `Draws.op`.
OPS: dict[str, Op] = {
    "shearX": affine.shear_x, "shearY": affine.shear_y, "translateX": affine.translate_x,
    "translateY": affine.translate_y, "rotate": affine.rotate, "color": color.color, "posterize": posterize,
    "solarize": solarize, "contrast": color.contrast, "sharpness": color.sharpness, "brightness": color.brightness,
    "autocontrast": autocontrast, "equalize": equalize, "invert": invert, "cutout": cutout,
}
INDEX = {name: k for k, name in enumerate(OPS)}
NONE = len(OPS)  # the op of a sample whose slot does not fire

Map = Callable[[torch.Tensor, int, int], torch.Tensor]
NEAREST_MAPS: dict[str, Map] = {"translateX": affine.translate_x_map, "translateY": affine.translate_y_map,
                                "rotate": affine.rotate_map}
SHEAR_MAPS: dict[str, Map] = {"shearX": affine.shear_x_map, "shearY": affine.shear_y_map}


class Draws(NamedTuple):
    """Every random choice of a batch's strong views, per slot (S) and sample (N), in the order
    the slots apply: `op` S x N int64 (index into OPS, NONE where the slot does not fire),
    `value` S x N float64 (the op's parameter), `box` S x N x 3 float64 (cutout's side, centre
    x, centre y; None for a policy without cutout)."""

    op: torch.Tensor
    value: torch.Tensor
    box: torch.Tensor | None


def apply_draws(images: torch.Tensor, draws: Draws, static: bool | None = None) -> torch.Tensor:
    """The batch (uint8 N x C x H x W) through every slot of `draws`; `static` as masked.use_static."""
    return apply_static(images, draws) if use_static(static, images.device) else apply_picked(images, draws)


def apply_picked(images: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Slot by slot, each op on the samples that picked it (host syncs: the CPU path)."""
    for s, (op, value) in enumerate(zip(draws.op, draws.value)):
        for k, (name, fn) in enumerate(OPS.items()):
            if name != "cutout":
                images = apply_to_picked(fn, images, op == k, value)
            elif draws.box is not None:
                images = apply_to_picked(fn, images, op == k, draws.box[s])
    return images


def apply_static(images: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Slot by slot, five static-shape passes over the whole batch (no host sync: the GPU path)."""
    h, w = images.shape[-2:]
    for s, (op, value) in enumerate(zip(draws.op, draws.value)):
        grey = color.greyscale(images)  # of the slot's input: contrast's and color's degenerate
        images = lookup(images, grey, op, value)
        images = enhance(images, grey, op, value)
        images = affine.warp_nearest(images, slot_map(NEAREST_MAPS, op, value, h, w))
        images = affine.warp_shear(images, slot_map(SHEAR_MAPS, op, value, h, w))
        if draws.box is not None:
            images = cutout(images, draws.box[s] * (op == INDEX["cutout"])[:, None])
    return images


def picks(op: torch.Tensor, name: str) -> torch.Tensor:
    """N x 1 x 1 x 1: which samples' op is `name`."""
    return (op == INDEX[name])[:, None, None, None]


def lookup(images: torch.Tensor, grey: torch.Tensor, op: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """The pointwise ops, each computed on the levels 0..255 exactly as on the pixels: first the
    ops that treat every channel alike (N x 1 x 1 x 256), then the per-channel ones."""
    n, c = images.shape[:2]
    index = pixel_index(images)
    x = levels(n, 1, images.device)
    alike = {
        "invert": invert(x),
        "posterize": posterize(x, value.clamp(1, 8)),  # other ops' values would be shifts out of range
        "solarize": solarize(x, value),
        "brightness": color.brightness(x, value),
        "contrast": color.blend(color.mean_grey(grey), x, value),
    }
    per_channel = {
        "autocontrast": stretch(x, *channel_range(images)),
        "equalize": equalize_lut(histograms(index)).view(n, c, 1, 256),
    }
    lut = x
    for name, table in (alike | per_channel).items():
        lut = torch.where(picks(op, name), table, lut)
    return apply_lut(lut.expand(n, c, 1, 256), index, images.shape)


def enhance(images: torch.Tensor, grey: torch.Tensor, op: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """color and sharpness as one blend; any other sample blends towards itself, which is exact
    (d + f (x - d) = d)."""
    degenerate = torch.where(picks(op, "color"), grey, images)
    degenerate = torch.where(picks(op, "sharpness"), color.smooth(images), degenerate)
    return color.blend(degenerate, images, value)


def slot_map(maps: dict[str, Map], op: torch.Tensor, value: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """N x 6 PIL maps: each sample's map if its op is one of `maps`, the identity otherwise."""
    matrix = affine.identity(len(op), op.device)
    for name, map_of in maps.items():
        matrix = torch.where((op == INDEX[name])[:, None], map_of(value, h, w), matrix)
    return matrix

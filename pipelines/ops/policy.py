"""The strong-view policies as batched tensor computations (ACT_SPEC.md "Augmentation").

- `autoaugment_cifar10`: the CIFAR-10 policy of pipelines/autoaugment_pil.py: the same 25
  sub-policies, bins, signs (none for rotate) and resampling (bicubic shears).
- `rand_augment`: the Web/Food strong view of pipelines/pil_ops.py: `n` ops drawn uniformly
  (with replacement) from 15, each applied with probability `p` at a bin drawn uniformly
  from 1..max_level-1, with the public code's tables: the AutoAugment bins for the 14 shared
  ops (bicubic shears, unsigned rotation) and a cutout of round(linspace(0, 20, 10))[bin]
  pixels filled with (125, 122, 113) at a uniform integer centre.

Each policy first draws every sample's random choices for the whole batch (`draw_*`: per op
position a `Slot`: which op, whether it fires, each op's parameter), then applies each op
type in turn to the samples whose slot chose and fired it (`apply_slot`). Loops run over op
positions (2) and op types (14 or 15), never over images, and every random number comes from
the generator passed in, drawn for the full batch, so the stream does not depend on which
samples fire nor on the device path.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import torch

from pipelines.autoaugment_pil import CIFAR10_POLICY, ENHANCE, MAGNITUDES, RANDOM_SIGN
from pipelines.ops import affine, color
from pipelines.ops.autocontrast import autocontrast
from pipelines.ops.cutout import cutout
from pipelines.ops.equalize import equalize
from pipelines.ops.invert import invert
from pipelines.ops.masked import Op, apply_masked
from pipelines.ops.posterize import posterize
from pipelines.ops.solarize import solarize
from pipelines.pil_ops import CUTOUT_SIDES, SHARED

AA_OPS: dict[str, Op] = {
    "shearX": partial(affine.shear_x, resample="bicubic"), "shearY": partial(affine.shear_y, resample="bicubic"),
    "translateX": affine.translate_x, "translateY": affine.translate_y, "rotate": affine.rotate,
    "color": color.color, "posterize": posterize, "solarize": solarize, "contrast": color.contrast,
    "sharpness": color.sharpness, "brightness": color.brightness, "autocontrast": autocontrast,
    "equalize": equalize, "invert": invert,
}
RA_OPS: dict[str, Op] = {
    "invert": invert, "cutout": cutout, "sharpness": color.sharpness, "autocontrast": autocontrast,
    "posterize": posterize, "shear_x": partial(affine.shear_x, resample="bicubic"),
    "shear_y": partial(affine.shear_y, resample="bicubic"), "translate_x": affine.translate_x,
    "translate_y": affine.translate_y, "rotate": affine.rotate, "equalize": equalize,
    "contrast": color.contrast, "color": color.color, "solarize": solarize, "brightness": color.brightness,
}


@dataclass
class Slot:
    """One op position of a policy, per sample: the op (index into the policy's op table),
    whether it fires, and each op's parameter (N, or N x 3 for cutout; float64)."""

    op: torch.Tensor
    fire: torch.Tensor
    values: dict[str, torch.Tensor]


def apply_slot(images: torch.Tensor, slot: Slot, ops: dict[str, Op]) -> torch.Tensor:
    for k, (name, op) in enumerate(ops.items()):
        images = apply_masked(op, images, slot.fire & (slot.op == k), slot.values[name])
    return images


def random_sign(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.where(torch.rand(n, device=device, generator=generator) < 0.5, 1.0, -1.0).double()


@lru_cache(maxsize=None)
def policy_table(device: torch.device) -> tuple[torch.Tensor, ...]:
    """Per sub-policy and stage (25 x 2): probability, op index, magnitude, random sign?, factor offset.
    Built once per device: copying lists to a GPU blocks the host, which a batch must not do."""
    names = list(AA_OPS)
    stages = [[(s[0], s[1], s[2]), (s[3], s[4], s[5])] for s in CIFAR10_POLICY]
    prob = torch.tensor([[p for p, _, _ in row] for row in stages], dtype=torch.float64, device=device)
    op = torch.tensor([[names.index(name) for _, name, _ in row] for row in stages], device=device)
    magnitude = torch.tensor([[float(MAGNITUDES[name][b]) for _, name, b in row] for row in stages],
                             dtype=torch.float64, device=device)
    signed = torch.tensor([[name in RANDOM_SIGN for _, name, _ in row] for row in stages], device=device)
    offset = torch.tensor([[1.0 if name in ENHANCE else 0.0 for _, name, _ in row] for row in stages],
                          dtype=torch.float64, device=device)
    return prob, op, magnitude, signed, offset


def draw_autoaugment(n: int, generator: torch.Generator, device: torch.device) -> tuple[torch.Tensor, list[Slot]]:
    """Each sample's sub-policy (uniform over 25) and its two slots (coin with the stage's p, sign)."""
    prob, op, magnitude, signed, offset = policy_table(device)
    sub = torch.randint(0, len(CIFAR10_POLICY), (n,), device=device, generator=generator)
    slots = []
    for stage in range(2):
        fire = torch.rand(n, device=device, generator=generator, dtype=torch.float64) < prob[sub, stage]
        sign = torch.where(signed[sub, stage], random_sign(n, generator, device), 1.0)
        value = offset[sub, stage] + magnitude[sub, stage] * sign  # enhance ops take 1 + m
        slots.append(Slot(op=op[sub, stage], fire=fire, values=dict.fromkeys(AA_OPS, value)))
    return sub, slots


def autoaugment_cifar10(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """AutoAugment's CIFAR-10 policy, each image its own sub-policy, coins and signs (uint8 in and out)."""
    _, slots = draw_autoaugment(len(images), generator, images.device)
    for slot in slots:
        images = apply_slot(images, slot, AA_OPS)
    return images


@lru_cache(maxsize=None)
def rand_augment_table(device: torch.device) -> torch.Tensor:
    """(ops shared with AutoAugment) x 10 bins: each op's magnitude per bin, as pil_ops takes it."""
    return torch.tensor([[float(v) for v in MAGNITUDES[aa]] for aa in SHARED.values()], dtype=torch.float64,
                        device=device)


def rand_augment_values(level: torch.Tensor, sign: torch.Tensor, centre: torch.Tensor, max_level: int,
                        height: int, width: int) -> dict[str, torch.Tensor]:
    """Every op's parameter at each sample's bin (`level`), as pipelines/pil_ops.py computes it:
    the AutoAugment tables (a sign for RANDOM_SIGN ops, 1 + m for enhance ops) and cutout's
    (side in pixels, centre x, centre y)."""
    table = rand_augment_table(level.device)
    bins = level.long()
    values = {}
    for k, (ra, aa) in enumerate(SHARED.items()):
        if aa in ("invert", "autocontrast", "equalize"):
            values[ra] = level  # no parameter: carry the bin, which tests read back
            continue
        m = table[k][bins]
        if aa in RANDOM_SIGN:
            m = m * sign
        values[ra] = m + 1.0 if aa in ENHANCE else m
    side = torch.as_tensor(CUTOUT_SIDES, dtype=torch.float64, device=level.device)[bins]
    values["cutout"] = torch.cat([side[:, None], centre], dim=1)
    return values


def draw_rand_augment(n: int, height: int, width: int, generator: torch.Generator, device: torch.device,
                      n_ops: int, p: float, max_level: int) -> list[Slot]:
    """`n_ops` slots: op uniform over 15, coin with p, level uniform over 1..max_level-1, sign, cutout centre."""
    slots = []
    for _ in range(n_ops):
        op = torch.randint(0, len(RA_OPS), (n,), device=device, generator=generator)
        fire = torch.rand(n, device=device, generator=generator) < p
        level = torch.randint(1, max_level, (n,), device=device, generator=generator).double()
        sign = random_sign(n, generator, device)
        centre = torch.stack([torch.randint(0, width, (n,), device=device, generator=generator),
                              torch.randint(0, height, (n,), device=device, generator=generator)], dim=1).double()
        slots.append(Slot(op=op, fire=fire, values=rand_augment_values(level, sign, centre, max_level, height, width)))
    return slots


def rand_augment(images: torch.Tensor, generator: torch.Generator, n: int = 2, p: float = 0.5,
                 max_level: int = 10) -> torch.Tensor:
    """RandAugment as the Web/Food strong view, per sample (uint8 in and out)."""
    height, width = images.shape[-2:]
    for slot in draw_rand_augment(len(images), height, width, generator, images.device, n, p, max_level):
        images = apply_slot(images, slot, RA_OPS)
    return images

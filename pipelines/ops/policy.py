"""The strong-view policies as batched tensor computations (ACT_SPEC.md "Augmentation").

- `autoaugment_cifar10`: the CIFAR-10 policy of pipelines/autoaugment_pil.py (the same 25
  sub-policies, bins and signs), each image drawing its own sub-policy, coins and signs.
- `rand_augment`: the Web/Food strong view: two ops drawn per image from 15, each applied
  with p = 0.5 at a level drawn from 1..9 of 10; the ranges of pipelines/pil_ops.py.

Both loop over op types (14 or 15), never over images: for each stage and op type, a mask
picks the images that apply it and `apply_where` applies it with per-image parameters.
"""
from __future__ import annotations

import functools

import torch

from pipelines.autoaugment_pil import CIFAR10_POLICY, MAGNITUDES, SIGNED
from pipelines.ops import affine, enhance, histogram, pointwise
from pipelines.ops.cutout import cutout
from pipelines.ops.select import apply_where

OPS = {
    "shearX": affine.shear_x, "shearY": affine.shear_y, "translateX": affine.translate_x,
    "translateY": affine.translate_y, "rotate": affine.rotate,
    "color": lambda x, m: enhance.color(x, 1 + m), "contrast": lambda x, m: enhance.contrast(x, 1 + m),
    "sharpness": lambda x, m: enhance.sharpness(x, 1 + m), "brightness": lambda x, m: enhance.brightness(x, 1 + m),
    "posterize": pointwise.posterize, "solarize": pointwise.solarize, "invert": pointwise.invert,
    "autocontrast": histogram.autocontrast, "equalize": histogram.equalize,
}
AA_NAMES = tuple(MAGNITUDES)


@functools.lru_cache(maxsize=None)
def _policy_tables(device: torch.device) -> tuple[torch.Tensor, ...]:
    """Per sub-policy: probability, op id and magnitude of each stage (built once per device:
    no host-to-device copy per batch)."""
    prob = torch.tensor([[s[0], s[3]] for s in CIFAR10_POLICY], device=device)
    op = torch.tensor([[AA_NAMES.index(s[1]), AA_NAMES.index(s[4])] for s in CIFAR10_POLICY], device=device)
    mag = torch.tensor([[float(MAGNITUDES[s[1]][s[2]]), float(MAGNITUDES[s[4]][s[5]])] for s in CIFAR10_POLICY],
                       device=device)
    signed = torch.tensor([name in SIGNED for name in AA_NAMES], device=device)
    return prob, op, mag, signed


def random_sign(n: int, device, generator: torch.Generator) -> torch.Tensor:
    return torch.where(torch.rand(n, device=device, generator=generator) < 0.5, 1.0, -1.0)


def autoaugment_cifar10(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, dev = len(images), images.device
    images = images.clone()  # apply_where writes in place on the CPU
    prob, op, mag, signed = _policy_tables(torch.device(dev))
    sub = torch.randint(0, len(CIFAR10_POLICY), (n,), device=dev, generator=generator)
    for stage in range(2):
        fire = torch.rand(n, device=dev, generator=generator) < prob[sub, stage]
        sign = random_sign(n, dev, generator)
        op_id = op[sub, stage]
        value = mag[sub, stage] * torch.where(signed[op_id], sign, 1.0)
        for k, name in enumerate(AA_NAMES):
            images = apply_where(OPS[name], images, fire & (op_id == k), value)
    return images


MAX_LEVEL = 10
# RandAugment op -> (AutoAugment-style op, value at level 10, signed); pipelines/pil_ops.py ranges.
RAND_AUGMENT = {
    "invert": ("invert", 0.0, False), "cutout": ("cutout", 0.5, False), "sharpness": ("sharpness", 0.9, True),
    "autocontrast": ("autocontrast", 0.0, False), "posterize": ("posterize", 4.0, False),
    "shear_x": ("shearX", 0.3, True), "shear_y": ("shearY", 0.3, True), "translate_x": ("translateX", 0.3, True),
    "translate_y": ("translateY", 0.3, True), "rotate": ("rotate", 30.0, True), "equalize": ("equalize", 0.0, False),
    "contrast": ("contrast", 0.9, True), "color": ("color", 0.9, True), "solarize": ("solarize", 256.0, False),
    "brightness": ("brightness", 0.9, True),
}
RA_NAMES = tuple(RAND_AUGMENT)


def rand_augment_value(name: str, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """The op's parameter at `level` (1..9), as pil_ops computes it."""
    _, top, signed = RAND_AUGMENT[name]
    value = top * level / MAX_LEVEL
    if name == "posterize":
        return torch.round(8 - value)
    if name == "solarize":
        return torch.round(256 - value)
    return value * sign if signed else value


def rand_augment(images: torch.Tensor, generator: torch.Generator, n_ops: int = 2, p: float = 0.5) -> torch.Tensor:
    n, dev = len(images), images.device
    images = images.clone()  # apply_where writes in place on the CPU
    h, w = images.shape[-2:]
    for _ in range(n_ops):
        op_id = torch.randint(0, len(RA_NAMES), (n,), device=dev, generator=generator)
        fire = torch.rand(n, device=dev, generator=generator) < p
        level = torch.randint(1, MAX_LEVEL, (n,), device=dev, generator=generator).float()
        sign = random_sign(n, dev, generator)
        centre = torch.rand(n, 2, device=dev, generator=generator) * torch.tensor([w, h], device=dev)
        for k, name in enumerate(RA_NAMES):
            value = rand_augment_value(name, level, sign)
            if name == "cutout":
                op, param = cutout, torch.cat([(value * min(h, w))[:, None], centre], dim=1)
            else:
                op, param = OPS[RAND_AUGMENT[name][0]], value
            images = apply_where(op, images, fire & (op_id == k), param)
    return images

"""The strong views' augmentation ops as data, declared once: what the PIL reference
(pipelines/autoaugment_pil.py, pipelines/pil_ops.py) and the batched ops (pipelines/ops/slot.py,
pipelines/ops/policy.py) both read. Numbers and names only (numpy, no torch, no PIL).

Ops are named as ACT_SPEC.md names them (shearX/Y, translateX/Y, ...). An op's argument at
bin b (0..BINS-1) with sign s (+1/-1) is `offset + magnitude[b] * (s if directed else 1)`: the
shear amount, the translation as a fraction of the image side, degrees counter-clockwise, the
ImageEnhance factor (1 + m), posterize's bits, solarize's threshold, cutout's side in pixels.
These are the tables of `CIFAR10Policy` in pip `randaugment` 1.0.2 (a copy of
DeepVoltaire/AutoAugment) and of the RandAugment the public ACT code imports.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

BINS = 10
GREY_FILL = 128  # outside the image, for the geometric ops
CUTOUT_FILL = (125, 122, 113)


class OpSpec(NamedTuple):
    """One op: its magnitude per bin, and how a policy turns a bin into the op's argument."""

    magnitude: np.ndarray  # BINS values
    directed: bool = False  # the magnitude is multiplied by a sign (+1/-1)
    random_sign: bool = False  # the policies draw that sign with p = 0.5; otherwise it is +1
    offset: float = 0.0  # added to the signed magnitude: ImageEnhance's factor is 1 + m


def enhance_op(top: float) -> OpSpec:
    """An ImageEnhance op: factor 1 + m, m from 0 to `top`, either way."""
    return OpSpec(np.linspace(0.0, top, BINS), directed=True, random_sign=True, offset=1.0)


# Every op a policy can pick. Its order is the batched ops' op index (pipelines/ops/slot.py).
OPS: dict[str, OpSpec] = {
    "shearX": OpSpec(np.linspace(0, 0.3, BINS), directed=True, random_sign=True),
    "shearY": OpSpec(np.linspace(0, 0.3, BINS), directed=True, random_sign=True),
    "translateX": OpSpec(np.linspace(0, 150 / 331, BINS), directed=True, random_sign=True),
    "translateY": OpSpec(np.linspace(0, 150 / 331, BINS), directed=True, random_sign=True),
    # Always counter-clockwise in the policies: CIFAR10Policy's rotate takes no sign.
    "rotate": OpSpec(np.linspace(0, 30, BINS), directed=True),
    "color": enhance_op(0.9),
    "posterize": OpSpec(np.round(np.linspace(8, 4, BINS)).astype(int)),
    "solarize": OpSpec(np.linspace(256, 0, BINS)),
    "contrast": enhance_op(0.9),
    "sharpness": enhance_op(0.9),
    "brightness": enhance_op(0.9),
    "autocontrast": OpSpec(np.zeros(BINS)),
    "equalize": OpSpec(np.zeros(BINS)),
    "invert": OpSpec(np.zeros(BINS)),
    # RandAugment's own: a square of this side, filled with CUTOUT_FILL.
    "cutout": OpSpec(np.round(np.linspace(0, 20, BINS)).astype(int)),
}
# The ops of CIFAR10Policy (all but cutout).
AUTOAUGMENT_OPS = tuple(name for name in OPS if name != "cutout")

# RandAugment's 15 ops in the order its draw indexes them: the public code's `randaugment`
# package's list, which the PIL reference (numpy's choice) and the batched draw (torch.randint)
# both index.
RAND_AUGMENT_ORDER = ("invert", "cutout", "sharpness", "autocontrast", "posterize", "shearX", "translateX",
                      "translateY", "shearY", "rotate", "equalize", "contrast", "color", "solarize", "brightness")

# (p1, op1, bin1, p2, op2, bin2): the AutoAugment paper's CIFAR-10 policy.
CIFAR10_POLICY = (
    (0.1, "invert", 7, 0.2, "contrast", 6), (0.7, "rotate", 2, 0.3, "translateX", 9),
    (0.8, "sharpness", 1, 0.9, "sharpness", 3), (0.5, "shearY", 8, 0.7, "translateY", 9),
    (0.5, "autocontrast", 8, 0.9, "equalize", 2), (0.2, "shearY", 7, 0.3, "posterize", 7),
    (0.4, "color", 3, 0.6, "brightness", 7), (0.3, "sharpness", 9, 0.7, "brightness", 9),
    (0.6, "equalize", 5, 0.5, "equalize", 1), (0.6, "contrast", 7, 0.6, "sharpness", 5),
    (0.7, "color", 7, 0.5, "translateX", 8), (0.3, "equalize", 7, 0.4, "autocontrast", 8),
    (0.4, "translateY", 3, 0.2, "sharpness", 6), (0.9, "brightness", 6, 0.2, "color", 8),
    (0.5, "solarize", 2, 0.0, "invert", 3), (0.2, "equalize", 0, 0.6, "autocontrast", 0),
    (0.2, "equalize", 8, 0.8, "equalize", 4), (0.9, "color", 9, 0.6, "equalize", 6),
    (0.8, "autocontrast", 4, 0.2, "solarize", 8), (0.1, "brightness", 3, 0.7, "color", 0),
    (0.4, "solarize", 5, 0.9, "autocontrast", 3), (0.9, "translateY", 9, 0.7, "translateY", 9),
    (0.9, "autocontrast", 2, 0.8, "solarize", 3), (0.8, "equalize", 8, 0.1, "invert", 3),
    (0.7, "translateY", 9, 0.9, "autocontrast", 1),
)

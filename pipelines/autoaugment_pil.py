"""AutoAugment's CIFAR-10 policy on one PIL image (ACT_SPEC.md "CIFAR strong").

The 25 sub-policies of the AutoAugment paper as the `CIFAR10Policy` that the public ACT code
imports (pip `randaugment` 1.0.2, a copy of DeepVoltaire/AutoAugment) defines them; the policy,
the bins and the signs are pipelines/augment_table.py's (CIFAR10_POLICY, OPS):
- each sub-policy is (p1, op1, bin1, p2, op2, bin2); a call draws one sub-policy uniformly,
  then applies op1 with probability p1, then op2 with probability p2;
- magnitudes: 10 bins per op; enhance ops use the factor 1 + magnitude;
- a random sign for shears, translations and the enhance ops; rotations are always
  counter-clockwise (CIFAR10Policy's rotate takes no sign);
- grey 128 outside the image for geometric ops; bicubic resampling for shears, nearest
  (PIL's default) for translations and rotations. CIFAR10Policy rotates an RGBA copy and
  composites it over grey: the same pixels as rotate(..., fillcolor=128), used here.
All randomness from a numpy Generator.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from pipelines.augment_table import AUTOAUGMENT_OPS, CIFAR10_POLICY, GREY_FILL, OPS

# The ops `pil_op` applies -> magnitude per bin.
MAGNITUDES = {name: OPS[name].magnitude for name in AUTOAUGMENT_OPS}
# The ImageEnhance ops: the table's ops with offset 1 (factor 1 + magnitude).
ENHANCE = {"color": ImageEnhance.Color, "contrast": ImageEnhance.Contrast,
           "sharpness": ImageEnhance.Sharpness, "brightness": ImageEnhance.Brightness}


def fill_for(img: Image.Image):
    return GREY_FILL if img.mode == "L" else (GREY_FILL,) * len(img.getbands())


def affine(img: Image.Image, matrix: tuple, resample) -> Image.Image:
    return img.transform(img.size, Image.AFFINE, matrix, resample=resample, fillcolor=fill_for(img))


def pil_op(name: str, img: Image.Image, magnitude: float, sign: int = 1) -> Image.Image:
    """Apply op `name` at `magnitude` (a value of MAGNITUDES); directed ops go in direction `sign` (+1/-1)."""
    if name not in MAGNITUDES:
        raise ValueError(f"unknown AutoAugment op {name!r}")
    spec = OPS[name]
    m = magnitude * sign if spec.directed else magnitude
    if name == "shearX":
        return affine(img, (1, m, 0, 0, 1, 0), Image.BICUBIC)
    if name == "shearY":
        return affine(img, (1, 0, 0, m, 1, 0), Image.BICUBIC)
    if name == "translateX":
        return affine(img, (1, 0, m * img.size[0], 0, 1, 0), Image.NEAREST)
    if name == "translateY":
        return affine(img, (1, 0, 0, 0, 1, m * img.size[1]), Image.NEAREST)
    if name == "rotate":
        return img.rotate(m, resample=Image.NEAREST, fillcolor=fill_for(img))
    if name in ENHANCE:
        return ENHANCE[name](img).enhance(spec.offset + m)
    if name == "posterize":
        return ImageOps.posterize(img, int(m))
    if name == "solarize":
        return ImageOps.solarize(img, m)
    if name == "autocontrast":
        return ImageOps.autocontrast(img)
    if name == "equalize":
        return ImageOps.equalize(img)
    return ImageOps.invert(img)  # the one op of MAGNITUDES left


def pil_op_at(name: str, img: Image.Image, level: int, rng: np.random.Generator) -> Image.Image:
    """Op `name` at bin `level` as the policies apply it: in a direction drawn from `rng`
    (p = 0.5) where the table's op has a random sign, else +1."""
    sign = (1 if rng.random() < 0.5 else -1) if OPS[name].random_sign else 1
    return pil_op(name, img, MAGNITUDES[name][level], sign)


class CIFAR10Policy:
    """One uniformly drawn sub-policy per call; each of its ops fires with its own probability."""

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        p1, op1, bin1, p2, op2, bin2 = CIFAR10_POLICY[int(rng.integers(len(CIFAR10_POLICY)))]
        for p, name, level in ((p1, op1, bin1), (p2, op2, bin2)):
            if rng.random() < p:
                img = pil_op_at(name, img, level, rng)
        return img

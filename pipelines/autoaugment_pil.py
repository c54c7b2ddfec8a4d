"""AutoAugment's CIFAR-10 policy on one PIL image (ACT_SPEC.md "CIFAR strong").

The 25 sub-policies of the AutoAugment paper as the `CIFAR10Policy` that the public ACT code
imports (pip `randaugment` 1.0.2, a copy of DeepVoltaire/AutoAugment) defines them:
- each sub-policy is (p1, op1, bin1, p2, op2, bin2); a call draws one sub-policy uniformly,
  then applies op1 with probability p1, then op2 with probability p2;
- magnitudes: 10 bins per op (MAGNITUDES); enhance ops use the factor 1 + magnitude;
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

FILL = 128
BINS = 10

# op name -> magnitude per bin (index 0..9).
MAGNITUDES = {
    "shearX": np.linspace(0, 0.3, BINS),
    "shearY": np.linspace(0, 0.3, BINS),
    "translateX": np.linspace(0, 150 / 331, BINS),
    "translateY": np.linspace(0, 150 / 331, BINS),
    "rotate": np.linspace(0, 30, BINS),
    "color": np.linspace(0.0, 0.9, BINS),
    "posterize": np.round(np.linspace(8, 4, BINS)).astype(int),
    "solarize": np.linspace(256, 0, BINS),
    "contrast": np.linspace(0.0, 0.9, BINS),
    "sharpness": np.linspace(0.0, 0.9, BINS),
    "brightness": np.linspace(0.0, 0.9, BINS),
    "autocontrast": np.zeros(BINS),
    "equalize": np.zeros(BINS),
    "invert": np.zeros(BINS),
}
ENHANCE = {"color": ImageEnhance.Color, "contrast": ImageEnhance.Contrast,
           "sharpness": ImageEnhance.Sharpness, "brightness": ImageEnhance.Brightness}
# Ops with a direction: `pil_op` multiplies their magnitude by `sign`.
DIRECTED = ("shearX", "shearY", "translateX", "translateY", "rotate", *ENHANCE)
# Ops whose direction the policy draws at random (all directed ops but rotate).
RANDOM_SIGN = tuple(name for name in DIRECTED if name != "rotate")

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


def fill_for(img: Image.Image):
    return FILL if img.mode == "L" else (FILL,) * len(img.getbands())


def affine(img: Image.Image, matrix: tuple, resample) -> Image.Image:
    return img.transform(img.size, Image.AFFINE, matrix, resample=resample, fillcolor=fill_for(img))


def pil_op(name: str, img: Image.Image, magnitude: float, sign: int = 1) -> Image.Image:
    """Apply op `name` at `magnitude` (a value of MAGNITUDES); directed ops go in direction `sign` (+1/-1)."""
    m = magnitude * sign if name in DIRECTED else magnitude
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
        return ENHANCE[name](img).enhance(1 + m)
    if name == "posterize":
        return ImageOps.posterize(img, int(m))
    if name == "solarize":
        return ImageOps.solarize(img, m)
    if name == "autocontrast":
        return ImageOps.autocontrast(img)
    if name == "equalize":
        return ImageOps.equalize(img)
    if name == "invert":
        return ImageOps.invert(img)
    raise ValueError(f"unknown AutoAugment op {name!r}")


class CIFAR10Policy:
    """One uniformly drawn sub-policy per call; each of its ops fires with its own probability."""

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        p1, op1, bin1, p2, op2, bin2 = CIFAR10_POLICY[int(rng.integers(len(CIFAR10_POLICY)))]
        for p, name, level in ((p1, op1, bin1), (p2, op2, bin2)):
            if rng.random() < p:
                sign = (1 if rng.random() < 0.5 else -1) if name in RANDOM_SIGN else 1
                img = pil_op(name, img, MAGNITUDES[name][level], sign)
        return img

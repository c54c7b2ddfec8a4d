"""RandAugment on one PIL image: the Web/Food strong view (ACT_SPEC.md), as the public code draws it.

Two ops drawn uniformly from 15, each applied with p = 0.5 at a magnitude bin drawn from
1..9 of 10 bins. The 14 ops it shares with AutoAugment take the same bin tables and
resampling as pipelines/autoaugment_pil.py (shears bicubic, translations and rotation
nearest, grey 128 outside; a random sign for shears, translations and the enhance ops;
rotation always counter-clockwise); cutout blanks a square of round(linspace(0, 20, 10))[bin]
pixels, rows and columns [centre - side // 2, centre + side // 2) clipped to the image,
filled with (125, 122, 113), at a centre drawn uniformly over the pixels. These are the
tables of the RandAugment the public ACT code imports. All randomness from a numpy Generator.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from pipelines.autoaugment_pil import MAGNITUDES, RANDOM_SIGN, pil_op

BINS = 10
CUTOUT_SIDES = np.round(np.linspace(0, 20, BINS)).astype(int)
CUTOUT_FILL = (125, 122, 113)

# RandAugment op name -> the AutoAugment op it applies (cutout is its own).
SHARED = {
    "invert": "invert", "sharpness": "sharpness", "autocontrast": "autocontrast", "posterize": "posterize",
    "shear_x": "shearX", "shear_y": "shearY", "translate_x": "translateX", "translate_y": "translateY",
    "rotate": "rotate", "equalize": "equalize", "contrast": "contrast", "color": "color", "solarize": "solarize",
    "brightness": "brightness",
}


def cutout(img: Image.Image, level: int, rng: np.random.Generator) -> Image.Image:
    side = int(CUTOUT_SIDES[level])
    cx, cy = int(rng.integers(0, img.size[0])), int(rng.integers(0, img.size[1]))
    x0, x1 = max(0, cx - side // 2), min(img.size[0], cx + side // 2)
    y0, y1 = max(0, cy - side // 2), min(img.size[1], cy + side // 2)
    pixels = np.array(img)
    pixels[y0:y1, x0:x1] = CUTOUT_FILL if pixels.ndim == 3 else CUTOUT_FILL[0]
    return Image.fromarray(pixels)


def shared_op(name: str):
    def op(img: Image.Image, level: int, rng: np.random.Generator) -> Image.Image:
        sign = (1 if rng.random() < 0.5 else -1) if name in RANDOM_SIGN else 1
        return pil_op(name, img, MAGNITUDES[name][level], sign)
    return op


RAND_AUGMENT_OPS = {"cutout": cutout, **{ra: shared_op(aa) for ra, aa in SHARED.items()}}
OP_NAMES = ("invert", "cutout", "sharpness", "autocontrast", "posterize", "shear_x", "translate_x", "translate_y",
            "shear_y", "rotate", "equalize", "contrast", "color", "solarize", "brightness")


def rand_augment(img: Image.Image, rng: np.random.Generator, n: int = 2, p: float = 0.5,
                 max_level: int = BINS) -> Image.Image:
    """`n` ops drawn uniformly (with replacement), each applied with probability `p` at a bin
    drawn from 1..max_level-1 (1..9 by default; max_level is at most BINS, the tables' length)."""
    if not 1 < max_level <= BINS:
        raise ValueError(f"max_level={max_level} is outside 2..{BINS}")
    for name in rng.choice(OP_NAMES, size=n):
        if rng.random() < p:
            img = RAND_AUGMENT_OPS[name](img, int(rng.integers(1, max_level)), rng)
    return img

"""RandAugment on one PIL image (the reference pipeline's Web/Food strong view, ACT_SPEC.md).

Two ops drawn uniformly from 15, each applied with p = 0.5 at an integer magnitude drawn from
1..9 (of a maximum level 10). Ranges at level 10, FixMatch-style: shear 0.3, translate 0.3 of
the side, rotate 30 degrees, enhance factors 1 +- 0.9, posterize 8 -> 4 bits, solarize
threshold 256 -> 0, cutout 0.5 of the side; a random sign where an op has a direction; grey
fill 128 for geometric ops and cutout. All randomness from a numpy Generator.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

FILL = 128
MAX_LEVEL = 10


def _fill(img: Image.Image):
    return (FILL,) * len(img.getbands()) if len(img.getbands()) > 1 else FILL


def _signed(level: float, top: float, rng: np.random.Generator) -> float:
    value = top * level / MAX_LEVEL
    return value if rng.random() < 0.5 else -value


def _affine(img: Image.Image, matrix: tuple) -> Image.Image:
    return img.transform(img.size, Image.AFFINE, matrix, resample=Image.NEAREST, fillcolor=_fill(img))


def shear_x(img, level, rng):
    return _affine(img, (1, _signed(level, 0.3, rng), 0, 0, 1, 0))


def shear_y(img, level, rng):
    return _affine(img, (1, 0, 0, _signed(level, 0.3, rng), 1, 0))


def translate_x(img, level, rng):
    return _affine(img, (1, 0, _signed(level, 0.3, rng) * img.size[0], 0, 1, 0))


def translate_y(img, level, rng):
    return _affine(img, (1, 0, 0, 0, 1, _signed(level, 0.3, rng) * img.size[1]))


def rotate(img, level, rng):
    return img.rotate(_signed(level, 30.0, rng), resample=Image.NEAREST, fillcolor=_fill(img))


def _enhance(kind):
    def op(img, level, rng):
        return kind(img).enhance(1.0 + _signed(level, 0.9, rng))
    return op


def posterize(img, level, rng):
    return ImageOps.posterize(img, int(round(8 - 4 * level / MAX_LEVEL)))


def solarize(img, level, rng):
    return ImageOps.solarize(img, int(round(256 - 256 * level / MAX_LEVEL)))


def cutout(img, level, rng):
    side = 0.5 * level / MAX_LEVEL * min(img.size)
    cx, cy = rng.uniform(0, img.size[0]), rng.uniform(0, img.size[1])
    img = img.copy()
    box = (max(0.0, cx - side / 2), max(0.0, cy - side / 2), min(img.size[0], cx + side / 2), min(img.size[1], cy + side / 2))
    ImageDraw.Draw(img).rectangle(box, fill=_fill(img))
    return img


RAND_AUGMENT_OPS = {
    "invert": lambda img, level, rng: ImageOps.invert(img),
    "cutout": cutout,
    "sharpness": _enhance(ImageEnhance.Sharpness),
    "autocontrast": lambda img, level, rng: ImageOps.autocontrast(img),
    "posterize": posterize,
    "shear_x": shear_x,
    "shear_y": shear_y,
    "translate_x": translate_x,
    "translate_y": translate_y,
    "rotate": rotate,
    "equalize": lambda img, level, rng: ImageOps.equalize(img),
    "contrast": _enhance(ImageEnhance.Contrast),
    "color": _enhance(ImageEnhance.Color),
    "solarize": solarize,
    "brightness": _enhance(ImageEnhance.Brightness),
}
OP_NAMES = tuple(RAND_AUGMENT_OPS)


def rand_augment(img: Image.Image, rng: np.random.Generator, n: int = 2, p: float = 0.5) -> Image.Image:
    """`n` ops drawn uniformly, each applied with probability `p` at a level drawn from 1..9."""
    for name in rng.choice(OP_NAMES, size=n):
        if rng.random() < p:
            img = RAND_AUGMENT_OPS[name](img, int(rng.integers(1, MAX_LEVEL)), rng)
    return img

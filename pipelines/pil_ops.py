"""RandAugment on one PIL image: the Web/Food strong view (ACT_SPEC.md), as the public code draws it.

Two ops drawn uniformly from 15 (pipelines/augment_table.py's RAND_AUGMENT_ORDER), each
applied with p = 0.5 at a magnitude bin drawn from 1..9 of 10 bins. The 14 ops it shares with
AutoAugment take the table's bins and pipelines/autoaugment_pil.py's resampling
(shears bicubic, translations and rotation nearest, grey 128 outside; a random sign for shears,
translations and the enhance ops; rotation always counter-clockwise); cutout blanks a square of
round(linspace(0, 20, 10))[bin] pixels, rows and columns [centre - side // 2, centre + side // 2)
clipped to the image, filled with (125, 122, 113), at a centre drawn uniformly over the pixels.
These are the tables of the RandAugment the public ACT code imports. All randomness from a
numpy Generator.
"""
from __future__ import annotations

from functools import partial

import numpy as np
from PIL import Image

from pipelines.augment_table import BINS, CUTOUT_FILL, OPS, RAND_AUGMENT_ORDER
from pipelines.autoaugment_pil import pil_op_at


def cutout(img: Image.Image, level: int, rng: np.random.Generator) -> Image.Image:
    side = int(OPS["cutout"].magnitude[level])
    cx, cy = int(rng.integers(0, img.size[0])), int(rng.integers(0, img.size[1]))
    x0, x1 = max(0, cx - side // 2), min(img.size[0], cx + side // 2)
    y0, y1 = max(0, cy - side // 2), min(img.size[1], cy + side // 2)
    pixels = np.array(img)
    pixels[y0:y1, x0:x1] = CUTOUT_FILL if pixels.ndim == 3 else CUTOUT_FILL[0]
    return Image.fromarray(pixels)


# RandAugment's ops by name: op(img, level, rng) -> img.
RAND_AUGMENT_OPS = {name: cutout if name == "cutout" else partial(pil_op_at, name) for name in RAND_AUGMENT_ORDER}


def rand_augment(img: Image.Image, rng: np.random.Generator, n: int = 2, p: float = 0.5,
                 max_level: int = BINS) -> Image.Image:
    """`n` ops drawn uniformly (with replacement), each applied with probability `p` at a bin
    drawn from 1..max_level-1 (1..9 by default; max_level is at most BINS, the tables' length)."""
    if not 1 < max_level <= BINS:
        raise ValueError(f"max_level={max_level} is outside 2..{BINS}")
    for name in rng.choice(RAND_AUGMENT_ORDER, size=n):
        if rng.random() < p:
            img = RAND_AUGMENT_OPS[name](img, int(rng.integers(1, max_level)), rng)
    return img

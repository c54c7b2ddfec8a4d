"""Decoding one image file to RGB, as the reference pipeline and `act convert` both do it.

The public Web and Food-101N scripts set PIL's `ImageFile.LOAD_TRUNCATED_IMAGES`, so a
truncated file of those web-crawled data sets trains on what PIL recovers of it (the rows it
could decode; PIL fills the rest with grey). A data set whose spec says so
(`DatasetSpec.recovers_truncated`) reads its files the same way; every other one stops on
them. PIL's switch is a process-wide global, so it is not set for the process: a file is
decoded strictly first, and only one that fails is decoded again with the switch on, under a
lock, and the switch put back (the pipelines and `act convert` decode in one thread per
process, so no strict decode runs beside it). Decoding twice costs only the rare truncated
file, and the first failure is what says that a file was truncated, so that it is counted.
"""
from __future__ import annotations

import threading

from PIL import Image, ImageFile

from act.errors import ActError

_RECOVERING = threading.Lock()  # one recovery at a time: they share PIL's global switch


def decode(path: str) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def read_rgb(path: str, recover_truncated: bool) -> tuple[Image.Image, bool]:
    """(the image at `path` as RGB, whether it was truncated and recovered). A file PIL cannot
    decode, or a truncated one when `recover_truncated` is off, is an ActError naming it."""
    try:
        return decode(path), False
    except Exception as exc:
        if not recover_truncated:
            raise ActError(f"image {path} cannot be read: {exc}") from exc
        first = exc
    with _RECOVERING:
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            return decode(path), True
        except Exception as exc:
            raise ActError(f"image {path} cannot be read: {first}") from exc
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before

"""The FFCV decoder of the public views (imported only when FFCV is installed).

FFCV's own decoders offer a random-resized crop and a centre crop; the public views need
torchvision's `Resize(resize)` (shorter side) + `RandomCrop(size)` + `RandomHorizontalFlip()`,
twice per image (weak and strong, drawn independently). `PublicViewsDecoder` decodes each
JPEG once, in FFCV's compiled worker threads, and writes both views: each crop is the box
of the decoded image that the resized image's crop covers, resized to `size` by FFCV's
`resize_crop` (OpenCV's area interpolation), so position and scale are those of
resize-then-crop. Draws come from numba's generator, which FFCV does not seed.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from ffcv.fields.rgb_image import IMAGE_MODES, SimpleRGBImageDecoder
from ffcv.libffcv import imdecode, resize_crop
from ffcv.pipeline.allocation_query import AllocationQuery
from ffcv.pipeline.compiler import Compiler


def crop_box(height: int, width: int, size: int, resize: int) -> tuple[int, int, int]:
    """(top, left, side) in the decoded image of a uniform RandomCrop(size) of the image resized
    so its shorter side is `resize` (the longer side truncated, as torchvision computes it)."""
    short = min(height, width)
    rows = resize if height == short else int(resize * height / short)
    cols = resize if width == short else int(resize * width / short)
    y = np.random.randint(0, rows - size + 1)
    x = np.random.randint(0, cols - size + 1)
    scale = short / resize
    side = min(short, int(round(size * scale)))
    return min(height - side, int(round(y * scale))), min(width - side, int(round(x * scale))), side


class PublicViewsDecoder(SimpleRGBImageDecoder):
    """RGB images -> N x 2 x size x size x 3 uint8: the weak and the strong view's crop and flip."""

    def __init__(self, size: int, resize: int, flip: bool):
        super().__init__()
        self.size, self.resize, self.flip = size, resize, flip

    def declare_state_and_memory(self, previous_state):
        pixels = np.uint64(self.metadata["width"].max()) * np.uint64(self.metadata["height"].max()) * np.uint64(3)
        shape, dtype = (2, self.size, self.size, 3), np.dtype("<u1")
        return (replace(previous_state, jit_mode=True, shape=shape, dtype=dtype),
                (AllocationQuery(shape, dtype), AllocationQuery((pixels,), dtype)))

    def generate_code(self):
        jpg, mem_read, my_range = IMAGE_MODES["jpg"], self.memory_read, Compiler.get_iterator()
        imdecode_c, resize_crop_c, crop_box_c = (Compiler.compile(f) for f in (imdecode, resize_crop, crop_box))
        size, resize, flip = self.size, self.resize, self.flip

        def decode(batch_indices, my_storage, metadata, storage_state):
            destination, temp_storage = my_storage
            for dst_ix in my_range(len(batch_indices)):
                field = metadata[batch_indices[dst_ix]]
                data = mem_read(field["data_ptr"], storage_state)
                height, width = np.uint32(field["height"]), np.uint32(field["width"])
                if field["mode"] == jpg:
                    imdecode_c(data, temp_storage[dst_ix], height, width, height, width, 0, 0, 1, 1, False, False)
                    image = temp_storage[dst_ix].reshape(-1)[:3 * height * width].reshape(height, width, 3)
                else:
                    image = data.reshape(height, width, 3)
                for view in range(2):
                    top, left, side = crop_box_c(np.int64(height), np.int64(width), size, resize)
                    out = destination[dst_ix, view]
                    resize_crop_c(image, top, top + side, left, left + side, out)
                    if flip and np.random.rand() < 0.5:
                        out[:] = out[:, ::-1].copy()
            return destination[:len(batch_indices)]

        decode.is_parallel = True
        return decode

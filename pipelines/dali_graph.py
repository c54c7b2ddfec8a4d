"""The DALI graph of the `dali` pipeline (imported only when DALI is installed).

Kept in a file of its own: DALI's conditionals (which `auto_aug` needs) rewrite the
pipeline function from its source code.
"""
from __future__ import annotations

import nvidia.dali.fn as fn
import nvidia.dali.types as types
import torch
from nvidia.dali import pipeline_def
from nvidia.dali.auto_aug import rand_augment
from nvidia.dali.backend import TensorGPU
from nvidia.dali.plugin.pytorch import feed_ndarray


def crop_flip(images, size: int, x, y, mirror, dtype, mean, std, layout: str = "CHW"):
    """The `size` square at relative position (x, y) (0..1 of the room left), mirrored where
    `mirror`, as `layout` `dtype`: RandomCrop(size) and the flip at positions drawn outside."""
    return fn.crop_mirror_normalize(images, crop=(size, size), crop_pos_x=x, crop_pos_y=y, mirror=mirror,
                                    mean=mean, std=std, dtype=dtype, output_layout=layout)


@pipeline_def(enable_conditionals=True)
def image_views(source, train: bool, strong: str, size: int, resize: int, mean, std, decoder: str):
    """Outputs (weak, strong) for training, (test,) otherwise; weak and test float32 CHW, normalised.

    `source(batch_info)` returns a batch's encoded images and, for training, each sample's crop
    positions and flips (weak x, y, mirror, strong x, y, mirror), drawn and seeded by the caller;
    StopIteration at the end of a pass. The graph draws nothing itself, so it is built once and
    every epoch's views are a function of (seed, epoch). `strong`: "" (none: the weak view again),
    "uint8" (its own crop and flip, uint8 CHW, for the public policy on the device) or
    "dali-randaugment" (that crop through DALI's RandAugment, normalised; DALI draws its ops)."""
    if not train:
        jpegs = fn.external_source(source=source, batch=True, batch_info=True, dtype=types.UINT8, ndim=1)
        images = fn.resize(fn.decoders.image(jpegs, device=decoder, output_type=types.RGB), resize_shorter=resize)
        return (fn.crop_mirror_normalize(images, crop=(size, size), crop_pos_x=0.5, crop_pos_y=0.5, mean=mean,
                                         std=std, dtype=types.FLOAT, output_layout="CHW"),)
    jpegs, wx, wy, wflip, sx, sy, sflip = fn.external_source(
        source=source, num_outputs=7, batch=True, batch_info=True,
        dtype=[types.UINT8, types.FLOAT, types.FLOAT, types.INT32, types.FLOAT, types.FLOAT, types.INT32])
    images = fn.resize(fn.decoders.image(jpegs, device=decoder, output_type=types.RGB), resize_shorter=resize)
    weak = crop_flip(images, size, wx, wy, wflip, types.FLOAT, mean, std)
    if not strong:
        return weak, weak
    unit = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    if strong == "uint8":
        return weak, crop_flip(images, size, sx, sy, sflip, types.UINT8, *unit)
    augmented = rand_augment.rand_augment(crop_flip(images, size, sx, sy, sflip, types.UINT8, *unit, "HWC"), n=2, m=9)
    return weak, fn.crop_mirror_normalize(augmented, mean=mean, std=std, dtype=types.FLOAT, output_layout="CHW")


def to_torch(tensor_list, device: torch.device) -> torch.Tensor:
    """A dense DALI batch (CPU or GPU) copied into a torch tensor on `device`."""
    dense = tensor_list.as_tensor()
    on_gpu = isinstance(dense, TensorGPU)
    dtype = torch.uint8 if dense.dtype == types.UINT8 else torch.float32
    out = torch.empty(dense.shape(), dtype=dtype, device=device if on_gpu else "cpu")
    feed_ndarray(dense, out, cuda_stream=torch.cuda.current_stream(device) if on_gpu else None)
    return out

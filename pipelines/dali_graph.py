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


def random_crop_flip(images, size: int, flip: bool, dtype, mean, std, layout: str = "CHW"):
    """RandomCrop(size) at a uniform position, a flip with p = 0.5 when `flip`, as `layout` `dtype`."""
    return fn.crop_mirror_normalize(
        images, crop=(size, size), crop_pos_x=fn.random.uniform(range=(0.0, 1.0)),
        crop_pos_y=fn.random.uniform(range=(0.0, 1.0)), mirror=fn.random.coin_flip() if flip else 0,
        mean=mean, std=std, dtype=dtype, output_layout=layout)


@pipeline_def(enable_conditionals=True)
def image_views(source, train: bool, strong: str, size: int, resize: int, flip: bool, mean, std, decoder: str):
    """Outputs (weak, strong) for training, (test,) otherwise; weak and test float32 CHW, normalised.
    `strong`: "" (none: the weak view again), "uint8" (its own crop and flip, uint8 CHW, for the
    public policy on the device) or "dali-randaugment" (that crop through DALI's RandAugment,
    normalised). `source(batch_info)` returns a batch's encoded images, StopIteration at the end."""
    jpegs = fn.external_source(source=source, batch=True, batch_info=True, dtype=types.UINT8, ndim=1)
    images = fn.decoders.image(jpegs, device=decoder, output_type=types.RGB)
    images = fn.resize(images, resize_shorter=resize)
    if not train:
        return (fn.crop_mirror_normalize(images, crop=(size, size), crop_pos_x=0.5, crop_pos_y=0.5, mean=mean,
                                         std=std, dtype=types.FLOAT, output_layout="CHW"),)
    weak = random_crop_flip(images, size, flip, types.FLOAT, mean, std)
    if not strong:
        return weak, weak
    unit = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    if strong == "uint8":
        return weak, random_crop_flip(images, size, flip, types.UINT8, *unit)
    augmented = rand_augment.rand_augment(random_crop_flip(images, size, flip, types.UINT8, *unit, "HWC"), n=2, m=9)
    return weak, fn.crop_mirror_normalize(augmented, mean=mean, std=std, dtype=types.FLOAT, output_layout="CHW")


def to_torch(tensor_list, device: torch.device) -> torch.Tensor:
    """A dense DALI batch (CPU or GPU) copied into a torch tensor on `device`."""
    dense = tensor_list.as_tensor()
    on_gpu = isinstance(dense, TensorGPU)
    dtype = torch.uint8 if dense.dtype == types.UINT8 else torch.float32
    out = torch.empty(dense.shape(), dtype=dtype, device=device if on_gpu else "cpu")
    feed_ndarray(dense, out, cuda_stream=torch.cuda.current_stream(device) if on_gpu else None)
    return out

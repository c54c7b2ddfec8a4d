"""Batched augmentation ops on uint8 N x C x H x W tensors (C = 1 or 3), any device.

Every op is `op(images, value) -> images`: computed for the whole batch with its own parameter
per sample (value: N float64, N x 3 for cutout; ignored by the ops without a magnitude), no
loop over images, no host sync. Each op reproduces its PIL counterpart (tests/test_ops.py
measures the difference):

weak.py                 the weak view (batch_crop, batch_flip_lr; they draw their own offsets/coins)
affine.py               shear_x/y, translate_x/y, rotate: PIL's maps per sample (`*_map`) and its
                        nearest (`warp_nearest`) and bicubic (`warp_shear`: 4 taps, shears move one axis)
color.py                brightness, color, contrast, sharpness (ImageEnhance: `blend` towards a degenerate)
imageops.py             posterize, solarize, invert, equalize, autocontrast (ImageOps)
cutout.py               grey square (RandAugment)
lut.py                  per-sample, per-channel lookup tables: the pointwise ops as one gather
masked.py               the op convention, `apply_to_picked`, and `use_static` (which path a device takes)
slot.py                 one op per sample of a batch: `Draws` and `apply_draws`, by the picked samples
                        (CPU) or as one static-shape function (`apply_static`: five passes per slot,
                        no host sync, compiles with fullgraph=True, capturable in a CUDA graph)
policy.py               autoaugment_cifar10 and rand_augment: an eager, seeded draw of every random
                        number (`draw_*`, tables cached per device), then `apply_draws`; POLICIES, DRAWS
The ops' names, bins, signs and fills, and the policies' tables, are pipelines/augment_table.py's,
which the PIL reference reads too.
"""
from pipelines.ops.weak import batch_crop, batch_flip_lr
from pipelines.ops.policy import autoaugment_cifar10, rand_augment

__all__ = ["batch_crop", "batch_flip_lr", "autoaugment_cifar10", "rand_augment"]

"""Batched augmentation ops on uint8 N x C x H x W tensors (C = 1 or 3), any device.

Every op is `op(images, value) -> images`: computed for the whole batch with its own parameter
per sample (value: N float64, N x 3 for cutout; ignored by the ops without a magnitude), no
loop over images, no host sync. `masked.apply_masked(op, images, mask, value)` is the one way
an op is applied to the samples a mask picks. Each op reproduces its PIL counterpart
(tests/test_ops.py measures the difference):

crop.py, flip.py        the weak view (batch_crop, batch_flip_lr; they draw their own offsets/coins)
affine.py               shear_x/y, translate_x/y, rotate (PIL's nearest and bicubic sampling)
color.py                brightness, color, contrast, sharpness (ImageEnhance)
posterize.py, solarize.py, invert.py, equalize.py, autocontrast.py   (ImageOps)
cutout.py               grey square (RandAugment)
policy.py               autoaugment_cifar10 and rand_augment: draw per-sample choices, then apply
"""
from pipelines.ops.crop import batch_crop
from pipelines.ops.flip import batch_flip_lr
from pipelines.ops.policy import autoaugment_cifar10, rand_augment

__all__ = ["batch_crop", "batch_flip_lr", "autoaugment_cifar10", "rand_augment"]

"""Batched augmentation ops on uint8 N x C x H x W tensors, per-sample parameters, any device.

crop.py, flip.py: the weak view; affine.py, enhance.py, pointwise.py, histogram.py,
cutout.py: the ops of the strong policies; policy.py: AutoAugment CIFAR-10 and RandAugment;
select.py: applying an op to the samples a mask picks.
"""
from pipelines.ops.crop import batch_crop
from pipelines.ops.flip import batch_flip_lr
from pipelines.ops.policy import autoaugment_cifar10, rand_augment

__all__ = ["batch_crop", "batch_flip_lr", "autoaugment_cifar10", "rand_augment"]

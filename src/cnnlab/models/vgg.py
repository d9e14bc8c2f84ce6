"""VGG (Simonyan & Zisserman 2014) from the lecture's `conv_block(in_c, out_c, n)`.

Variants are data: the number of 3×3 convolutions in each of the five blocks. With 224×224 input
the features end at 7×7×512 and the first FC layer has 512·7·7·4096 + 4096 = 102,764,544
parameters.
"""

from __future__ import annotations

import torch
from torch import nn

# Convolutions per block; channels are 64, 128, 256, 512, 512 for every depth.
CFGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


def conv_block(in_c: int, out_c: int, n: int, batch_norm: bool = False) -> list[nn.Module]:
    """The lecture's block: n × (3×3 conv, [BatchNorm], ReLU), then a 2×2 max pool."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Conv2d(in_c if i == 0 else out_c, out_c, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_c))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return layers


class VGG(nn.Module):
    def __init__(
        self,
        *,
        depth: int,
        in_channels: int,
        num_classes: int,
        image_size: int,
        batch_norm: bool = False,
        hidden: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__()
        if depth not in CFGS:
            raise ValueError(f"VGG depth={depth} is not one of {sorted(CFGS)}")
        layers, c_in = [], in_channels
        for n, width in zip(CFGS[depth], WIDTHS, strict=True):
            layers += conv_block(c_in, width, n, batch_norm)
            c_in = width
        self.features = nn.Sequential(*layers)
        side = image_size // 32  # five 2×2 pools
        if side < 1:
            raise ValueError(f"VGG needs images of at least 32×32 pixels, got {image_size}")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(512 * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),  # logits; use CrossEntropyLoss
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

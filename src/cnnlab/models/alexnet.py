"""The lecture's simplified AlexNet (Krizhevsky et al. 2012), one GPU tower, no LRN.

INPUT 227×227×3 → CONV1 11×11/4, 96 → 55×55×96 → POOL 3/2 → 27×27×96 → CONV2 5×5, 256 →
POOL 3/2 → 13×13×256 → CONV3-5 3×3 (384, 384, 256) → POOL 3/2 → 6×6×256 → FC 4096 → FC 4096 → FC.
"""

from __future__ import annotations

import torch
from torch import nn


class AlexNet(nn.Module):
    def __init__(
        self, *, in_channels: int, num_classes: int, image_size: int, dropout: float = 0.5
    ):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        with torch.no_grad():  # 6×6×256 at 227×227; smaller inputs give smaller maps
            flat = self.features(torch.zeros(1, in_channels, image_size, image_size)).numel()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(flat, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))

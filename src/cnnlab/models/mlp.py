"""The lecture's multilayer perceptron: flatten → Linear(C·H·W, 256) → ReLU → Linear(256, K)."""

from __future__ import annotations

from torch import nn


class MLP(nn.Module):
    def __init__(self, *, in_channels: int, num_classes: int, image_size: int, hidden: int = 256):
        super().__init__()
        self.features = nn.Flatten()  # (N, C, H, W) -> (N, C·H·W): no feature maps to explain
        self.classifier = nn.Sequential(
            nn.Linear(in_channels * image_size * image_size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),  # logits; use CrossEntropyLoss
        )

    def forward(self, x):
        return self.classifier(self.features(x))

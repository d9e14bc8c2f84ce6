"""The lecture's ConvNet: conv5×5-32 → ReLU → maxpool → conv3×3-64 → ReLU → maxpool → fc-256 → fc.

Both convolutions keep the spatial size (padding 2 and 1), both pools halve it, so a 28×28 input
reaches the classifier as 64 × 7 × 7; other sizes give 64 × ⌊⌊H/2⌋/2⌋ × ⌊⌊W/2⌋/2⌋.
"""

from __future__ import annotations

from torch import nn


class ConvNet(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        hidden: int = 256,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if image_size < 4:
            raise ValueError(f"ConvNet needs images of at least 4×4 pixels, got {image_size}")

        def block(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            conv = nn.Conv2d(c_in, c_out, kernel_size=k, padding=k // 2, bias=not batch_norm)
            norm = [nn.BatchNorm2d(c_out)] if batch_norm else []
            return [conv, *norm, nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2)]

        self.features = nn.Sequential(*block(in_channels, 32, 5), *block(32, 64, 3))
        side = image_size // 2 // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout) if dropout else nn.Identity(),  # not in the lecture: default off
            nn.Linear(hidden, num_classes),  # logits; use CrossEntropyLoss
        )

    def forward(self, x):
        return self.classifier(self.features(x))

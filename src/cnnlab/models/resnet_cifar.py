"""The CIFAR ResNet of He et al. 2016 (§4.2): depth 6n+2, three stages of n basic blocks with
16, 32 and 64 channels, global average pooling, one FC layer. `residual=False` removes every skip
connection and leaves the same layers: the "plain" network the paper compares against.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus the input (projected when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, residual: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.residual = residual
        self.shortcut: nn.Module = nn.Identity()
        if residual and (stride != 1 or c_in != c_out):
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.residual:
            out = out + self.shortcut(x)
        return self.act(out)


class ResNetCifar(nn.Module):
    def __init__(
        self,
        *,
        depth: int = 20,
        in_channels: int,
        num_classes: int,
        image_size: int,
        residual: bool = True,
        widths: tuple[int, int, int] = (16, 32, 64),
    ):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"ResNet-CIFAR depth={depth} must be 6n+2 (20, 32, 44, 56, 110)")
        if image_size < 4:
            raise ValueError(f"ResNet-CIFAR needs images of at least 4×4 pixels, got {image_size}")
        n = (depth - 2) // 6
        stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, c_in = [], widths[0]
        for i, width in enumerate(widths):
            blocks = [
                BasicBlock(
                    c_in if b == 0 else width, width, 2 if (i > 0 and b == 0) else 1, residual
                )
                for b in range(n)
            ]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.features = nn.Sequential(stem, *stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1], num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))

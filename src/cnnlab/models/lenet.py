"""LeNet-5 (LeCun et al. 1998): conv5×5-6 → pool → conv5×5-16 → pool → fc-120 → fc-84 → fc.

The paper feeds 32×32 images; 28×28 MNIST digits get the usual 2-pixel zero padding on the first
convolution, so C1 still yields 28×28×6. The paper's squashing function is a scaled tanh and its
subsampling an average pool; both are the defaults here (`activation: relu`, `pool: max` give
the modern variant).
"""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        activation: str = "tanh",
        pool: str = "avg",
    ):
        super().__init__()
        act, pooling = ACTIVATIONS[activation], POOLS[pool]
        pad = 2 if image_size < 32 else 0  # 28×28 → 32×32 equivalent, as for MNIST in the paper
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=pad),
            act(),  # C1
            pooling(kernel_size=2, stride=2),  # S2
            nn.Conv2d(6, 16, kernel_size=5),
            act(),  # C3
            pooling(kernel_size=2, stride=2),  # S4
        )
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"LeNet-5 needs images of at least 12×12 pixels, got {image_size}")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            act(),  # C5 (a full connection at 32×32 input)
            nn.Linear(120, 84),
            act(),  # F6
            nn.Linear(84, num_classes),  # logits (the paper used RBF units)
        )

    def forward(self, x):
        return self.classifier(self.features(x))

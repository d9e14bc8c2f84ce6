"""The lecture's ConvNet: conv5×5-32 → ReLU → maxpool → conv3×3-64 → ReLU → maxpool → fc-256 → fc.

Both convolutions keep the spatial size (padding 2 and 1), both pools halve it, so a 28×28 input
reaches the classifier as 64 × 7 × 7; other sizes give 64 × ⌊⌊H/2⌋/2⌋ × ⌊⌊W/2⌋/2⌋.

Two variants the lecture's claims compare (`make lecture`), each in the same layer positions so
checkpoints and `cam_layer` paths keep their meaning:
- `norm`: the layer after each convolution: `batch` (the lecture's BatchNorm placement, conv →
  BN → ReLU), `group` (GroupNorm, 8 groups), `layer` (LayerNorm over channels and space, i.e.
  GroupNorm with one group) or `none`. `batch_norm: true` is the older spelling of `batch`.
- `pool`: `max` (the lecture's), `avg`, or `stride`: no pooling layer (an Identity in its place),
  the convolution itself steps by 2 pixels, so the spatial reduction and the parameters are the
  same and only the pooling's local invariance is gone.
"""

from __future__ import annotations

from torch import nn

GROUPS = 8  # GroupNorm's groups: 32 and 64 channels split evenly


def _norm(kind: str, channels: int) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    if kind == "group":
        return [nn.GroupNorm(GROUPS, channels)]
    if kind == "layer":
        return [nn.GroupNorm(1, channels)]
    return []


class ConvNet(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        hidden: int = 256,
        batch_norm: bool = False,
        norm: str | None = None,
        pool: str = "max",
        dropout: float = 0.0,
    ):
        super().__init__()
        if image_size < 4:
            raise ValueError(f"ConvNet needs images of at least 4×4 pixels, got {image_size}")
        norm = norm or ("batch" if batch_norm else "none")
        if batch_norm and norm != "batch":
            raise ValueError(f"model.net.norm={norm!r} contradicts model.net.batch_norm=true; "
                             "valid with batch_norm: batch or null")  # fmt: skip
        side = image_size

        def block(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            nonlocal side
            stride = 2 if pool == "stride" else 1
            conv = nn.Conv2d(c_in, c_out, kernel_size=k, stride=stride, padding=k // 2,
                             bias=norm == "none")  # fmt: skip
            if pool == "stride":
                side = (side + 2 * (k // 2) - k) // 2 + 1
                reduce: nn.Module = nn.Identity()
            else:
                side //= 2
                reduce = nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2)
            return [conv, *_norm(norm, c_out), nn.ReLU(), reduce]

        self.features = nn.Sequential(*block(in_channels, 32, 5), *block(32, 64, 3))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout) if dropout else nn.Identity(),  # not in the lecture: default off
            nn.Linear(hidden, num_classes),  # logits; use CrossEntropyLoss
        )

    def forward(self, x):
        return self.classifier(self.features(x))

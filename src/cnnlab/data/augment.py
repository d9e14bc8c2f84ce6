"""Batch augmentations: one random transform per image, applied to a whole float batch at once.

In-memory datasets hand over uint8 batches; these run after the batch reaches the device, so
augmentation costs one `grid_sample` per batch instead of a PIL call per image.
Inputs and outputs are float (N, C, H, W) in [0, 1], before normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class RandomAffine(nn.Module):
    """Per-image rotation (± degrees), shift (± translate × size) and zoom; empty space is black."""

    def __init__(
        self, degrees: float = 10.0, translate: float = 0.1, scale: Sequence[float] = (0.9, 1.1)
    ):
        super().__init__()
        self.degrees, self.translate, self.scale = degrees, translate, tuple(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, dev = x.shape[0], x.device
        angle = (torch.rand(n, device=dev) * 2 - 1) * math.radians(self.degrees)
        lo, hi = self.scale
        zoom = lo + torch.rand(n, device=dev) * (hi - lo)
        # affine_grid maps output to input coordinates in [-1, 1]: a shift of t × size is 2t.
        shift = (torch.rand(n, 2, device=dev) * 2 - 1) * self.translate * 2
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class RandomCropFlip(nn.Module):
    """CIFAR's standard: zero-pad by `padding` pixels, random crop back to size, random h-flip."""

    def __init__(self, padding: int = 4, flip: bool = True):
        super().__init__()
        self.padding, self.flip = padding, flip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        p = self.padding
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), device=x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), device=x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
        batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
        chans = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
        out = padded[batch, chans, rows, cols]
        if self.flip:
            flip = torch.rand(n, device=x.device) < 0.5
            out = torch.where(flip.view(n, 1, 1, 1), out.flip(-1), out)
        return out


class Compose(nn.Module):
    def __init__(self, steps: Sequence[nn.Module]):
        super().__init__()
        self.steps = nn.ModuleList(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x

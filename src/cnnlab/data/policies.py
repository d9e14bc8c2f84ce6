"""Per-image augmentation policies (torchvision.transforms.v2) on uint8 (C, H, W) tensors.

These run once per image where the data is fetched (in DataLoader workers for image folders); the
cheap geometric ones for in-memory data run per batch instead (`cnnlab.data.augment`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2


def policy(
    name: str,
    *,
    num_ops: int = 2,
    magnitude: int = 9,
    autoaugment: str = "imagenet",
    severity: int = 3,
    hflip: bool,
    color_jitter: float = 0.0,
    random_erasing: float = 0.0,
) -> v2.Compose:
    """`randaugment`, `trivialaugment`, `autoaugment` (imagenet|cifar10|svhn), `augmix`, `imagenet`
    (the lecture's: flip, ColorJitter, RandAugment) or `none`, plus optional flip, colour jitter
    and random erasing."""
    steps: list = []
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if color_jitter:
        steps.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter))
    if name == "randaugment":
        steps.append(v2.RandAugment(num_ops=num_ops, magnitude=magnitude))
    elif name == "trivialaugment":
        steps.append(v2.TrivialAugmentWide())
    elif name == "autoaugment":
        policies = {p.name.lower(): p for p in v2.AutoAugmentPolicy}
        if autoaugment not in policies:
            raise ValueError(f"autoaugment policy {autoaugment!r}; valid: {', '.join(policies)}")
        steps.append(v2.AutoAugment(policies[autoaugment]))
    elif name == "augmix":
        steps.append(v2.AugMix(severity=severity))
    elif name != "none":
        raise ValueError(
            f"augmentation policy {name!r}; valid: none, randaugment, trivialaugment, "
            "autoaugment, augmix"
        )
    if random_erasing:
        # RandomErasing needs floats: erase on a float copy, then back to uint8.
        steps += [
            v2.ToDtype(torch.float32, scale=True),
            v2.RandomErasing(p=random_erasing),
            v2.ToDtype(torch.uint8, scale=True),
        ]
    return v2.Compose(steps)


def train_crop(image_size: int, scale: Sequence[float] = (0.08, 1.0)) -> v2.Transform:
    """ImageNet-style random-resized crop for decoded files (the eval crop is Resize+CenterCrop)."""
    return v2.RandomResizedCrop(image_size, scale=tuple(scale), antialias=True)

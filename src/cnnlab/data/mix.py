"""MixUp / CutMix on whole batches, with soft targets that the loss and the accuracy accept."""

from __future__ import annotations

import torch
from torchvision.transforms import v2


class MixUpCutMix:
    """With probability `prob`, mix the batch: MixUp (alpha `mixup_alpha`) or CutMix (alpha
    `cutmix_alpha`), chosen at random with `switch_prob` for CutMix. Targets become (N, classes)
    probabilities that sum to 1; unmixed batches get one-hot targets, so the type never varies."""

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.2,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
    ):
        self.num_classes = num_classes
        self.prob = prob
        choices, weights = [], []
        if mixup_alpha > 0:
            choices.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
            weights.append(1 - switch_prob if cutmix_alpha > 0 else 1.0)
        if cutmix_alpha > 0:
            choices.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
            weights.append(switch_prob if mixup_alpha > 0 else 1.0)
        if not choices:
            raise ValueError("MixUpCutMix needs mixup_alpha > 0 or cutmix_alpha > 0")
        self.mix = v2.RandomChoice(choices, p=weights)

    def __call__(self, images: torch.Tensor, targets: torch.Tensor):
        if torch.rand(()) < self.prob:
            return self.mix(images, targets)
        return images, torch.nn.functional.one_hot(targets, self.num_classes).to(images.dtype)

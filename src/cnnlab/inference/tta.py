"""Test-time augmentation: the softmax averaged over views of each image.

`hflip` (the image and its mirror) suits photos whose classes are mirror-symmetric; `five_crop`
(four corners and the centre of the image resized to 1/0.875 of the network's image size, as
ImageNet's 224 of 256) suits photos whose object is not always centred. Neither suits digits or
text, whose mirror image is another symbol: docs/predict-export.md has the measured effect.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms.v2 import functional as TF

CROP_FRACTION = 0.875  # five_crop: the crops' side over the resized image's side


def load_size(mode: str, image_size: int) -> int:
    """The side images are loaded at: larger for five_crop, whose crops are `image_size`."""
    return round(image_size / CROP_FRACTION) if mode == "five_crop" else image_size


def views(batch: torch.Tensor, mode: str, image_size: int) -> list[torch.Tensor]:
    if mode == "hflip":
        return [batch, batch.flip(-1)]
    if mode == "five_crop":
        return list(TF.five_crop(batch, [image_size, image_size]))
    return [batch]


def probabilities(
    logits: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, mode: str, image_size: int
) -> torch.Tensor:
    """Class probabilities (N, classes) of a uint8 batch, averaged over its views."""
    probs = [torch.softmax(logits(view), dim=1) for view in views(batch, mode, image_size)]
    return torch.stack(probs).mean(0)

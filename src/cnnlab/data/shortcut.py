"""The shortcut demo: MNIST digits with a small bright mark on the border. In training the mark's
position encodes the label (with probability `correlation`); in validation and test it is at a
random position, so a network that learned the mark instead of the digit is caught, by its
accuracy and by where its Grad-CAM points. Boxes are the digits' extents (the pointing game)."""

from __future__ import annotations

import torch

from cnnlab.data.tensor_dataset import TensorImages

MARK = 3  # pixels


def _positions(side: int, count: int) -> list[tuple[int, int]]:
    """`count` (row, col) corners spread along the top and bottom edges."""
    per_edge = (count + 1) // 2
    step = (side - MARK) / max(1, per_edge - 1)
    top = [(0, round(i * step)) for i in range(per_edge)]
    bottom = [(side - MARK, round(i * step)) for i in range(per_edge)]
    return (top + bottom)[:count]


def digit_boxes(images: torch.Tensor, threshold: int = 32) -> torch.Tensor:
    """(x0, y0, x1, y1) of the pixels brighter than `threshold`, per image (before marking)."""
    mask = images[:, 0] > threshold
    rows, cols = mask.any(2), mask.any(1)
    idx = torch.arange(mask.shape[-1])

    def extent(m):
        first = torch.where(m, idx, mask.shape[-1]).min(1).values
        last = torch.where(m, idx, -1).max(1).values + 1
        return first, last

    x0, x1 = extent(cols)
    y0, y1 = extent(rows)
    return torch.stack([x0, y0, x1, y1], 1)


def mark(
    ds: TensorImages, correlation: float, num_classes: int, generator: torch.Generator
) -> TensorImages:
    images = ds.images.clone()
    boxes = digit_boxes(images)
    spots = _positions(images.shape[-1], num_classes)
    random_spot = torch.randint(0, num_classes, (len(ds),), generator=generator)
    follow = torch.rand(len(ds), generator=generator) < correlation
    where = torch.where(follow, ds.targets, random_spot)
    for i, s in enumerate(where.tolist()):
        r, c = spots[s]
        images[i, :, r : r + MARK, c : c + MARK] = 255
    out = TensorImages(images, ds.targets, ds.class_names)
    out.boxes = boxes
    return out

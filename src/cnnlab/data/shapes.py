"""`data=shapes`: a small bright shape (the class) at a random position on a cluttered background,
with its bounding box known, so that Grad-CAM's localisation can be measured (pointing game)."""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.data.tensor_dataset import TensorImages

CLASSES = ["square", "circle", "triangle", "cross"]


def _mask(kind: str, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    if kind == "square":
        return np.ones((size, size), bool)
    if kind == "circle":
        return (yy - c) ** 2 + (xx - c) ** 2 <= (size / 2) ** 2
    if kind == "triangle":
        return np.abs(xx - c) <= yy / 2
    bar = max(1, size // 4)  # cross
    return (np.abs(yy - c) < bar) | (np.abs(xx - c) < bar)


def make(
    n: int,
    image_size: int,
    in_channels: int,
    rng: np.random.Generator,
    object_size: tuple[int, int] = (8, 12),
    clutter: int = 6,
    decoys: int = 3,
) -> TensorImages:
    """The image is a grid of 16-pixel cells; the object and `decoys` speckled patches of the
    same size and brightness sit in distinct cells. Brightness alone does not find the object,
    so an untrained network's CAM does not either (pointing game ≈ chance)."""
    cell = 16
    per_side = image_size // cell
    if per_side * per_side < decoys + 1 or object_size[1] > cell:
        raise ValueError(
            f"shapes: image_size={image_size} has room for {per_side**2} cells of "
            f"{cell} pixels; need {decoys + 1}"
        )
    images = rng.integers(0, 60, (n, image_size, image_size)).astype(np.float32)  # noise
    targets = rng.integers(0, len(CLASSES), n)
    boxes = np.zeros((n, 4), np.int64)

    def place(cell_index: int) -> tuple[int, int, int]:
        size = int(rng.integers(object_size[0], object_size[1] + 1))
        cy, cx = divmod(cell_index, per_side)
        y = cy * cell + int(rng.integers(0, cell - size + 1))
        x = cx * cell + int(rng.integers(0, cell - size + 1))
        return y, x, size

    for i, img in enumerate(images):
        for _ in range(clutter):  # thin lines, as bright as the decoys
            r, a, b = rng.integers(0, image_size), *sorted(rng.integers(0, image_size, 2))
            if rng.random() < 0.5:
                img[r, a:b] = rng.integers(120, 220)
            else:
                img[a:b, r] = rng.integers(120, 220)
        cells = rng.permutation(per_side * per_side)[: decoys + 1]
        for c in cells[1:]:
            y, x, size = place(int(c))
            img[y : y + size, x : x + size][rng.random((size, size)) < 0.5] = 255
        y, x, size = place(int(cells[0]))
        img[y : y + size, x : x + size][_mask(CLASSES[targets[i]], size)] = 255
        boxes[i] = (x, y, x + size, y + size)
    tensor = torch.from_numpy(images.clip(0, 255).astype(np.uint8)).unsqueeze(1)
    ds = TensorImages(tensor.repeat(1, in_channels, 1, 1), torch.from_numpy(targets), CLASSES)
    ds.boxes = torch.from_numpy(boxes)
    return ds

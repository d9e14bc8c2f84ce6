"""The PIL drawings that callbacks log during training."""

from __future__ import annotations

import numpy as np

from cnnlab.analysis.render import confusion_image


def _cell_colour(image: np.ndarray, n: int, i: int, j: int, cell: int = 28) -> np.ndarray:
    """Cell (i, j)'s colour: the matrix is the bottom-right n×n block, 4 px from the edges."""
    x0, y0 = image.shape[1] - 4 - n * cell, image.shape[0] - 4 - n * cell
    return image[y0 + i * cell + cell - 3, x0 + j * cell + cell - 3]  # a corner, away from text


def test_confusion_cells_are_shaded_by_share_of_the_true_class():
    counts = np.array([[9, 1, 0], [0, 5, 5], [0, 0, 7]])
    image = confusion_image(counts, ["zero", "one", "two"])
    assert image.dtype == np.uint8 and image.shape[-1] == 3
    darkness = {
        (i, j): 255 * 3 - int(_cell_colour(image, 3, i, j).astype(int).sum())
        for i in range(3)
        for j in range(3)
    }
    assert darkness[(0, 2)] == 0  # no such prediction: white
    assert darkness[(2, 2)] > darkness[(0, 0)] > darkness[(1, 1)] > darkness[(0, 1)] > 0
    assert darkness[(1, 1)] == darkness[(1, 2)]  # 5 of 10 both
    assert (image < 128).any(axis=-1).sum() > 100  # labels and counts are drawn


def test_many_classes_get_small_unlabelled_cells():
    counts = np.eye(100, dtype=int) * 3
    image = confusion_image(counts, [f"c{i}" for i in range(100)])
    assert image.shape[0] < 100 * 28 and image.shape[1] < 100 * 28

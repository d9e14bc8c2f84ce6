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


def test_captions_use_the_bitmap_font_and_fall_back_for_text_it_cannot_encode():
    """The bitmap font is ~10× cheaper per caption than Pillow's FreeType default; names beyond
    Latin-1 (it cannot encode them) still draw, with the FreeType font."""
    from PIL import Image, ImageDraw, ImageFont

    from cnnlab.analysis.render import LINE, grid

    tile = np.zeros((8, 8, 3), np.uint8)
    drawn = grid([tile], ["pred seven"], columns=1, tile=64, pad=4)
    expected = Image.new("RGB", (drawn.shape[1], drawn.shape[0]), (255, 255, 255))
    ImageDraw.Draw(expected).multiline_text(
        (4, 4), "pred seven", fill=(0, 0, 0), font=ImageFont.load_default_imagefont(), spacing=1
    )
    caption = slice(0, 4 + LINE)
    assert np.array_equal(drawn[caption], np.asarray(expected)[caption])
    other = grid([tile], ["кошка 猫"], columns=1, tile=64, pad=4)
    assert (other[caption] < 128).any()  # drawn, not an encoding error


def test_grid_captions_never_overlap_their_pictures():
    import numpy as np

    from cnnlab.analysis.render import grid

    captions = ["true 0 - zero", "pred 3 - three\np=0.89 gy", "true-class CAM\np=0.02"]
    white = [np.ones((28, 28, 3), np.float32)] * 3  # in [0, 1]: pure white tiles
    picture = grid(white, captions, columns=3, tile=40, pad=4)
    # Each tile is the bottom 40 rows of its cell: no caption pixel (dark) may fall in them.
    tiles = picture[picture.shape[0] - 4 - 40 : picture.shape[0] - 4]
    assert tiles.min() == 255

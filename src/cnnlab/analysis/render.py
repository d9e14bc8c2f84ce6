"""Captioned image grids drawn with PIL, far cheaper than a matplotlib figure, which matters for
callbacks that run during training."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LINE = 11  # pixels per caption line (PIL's default bitmap font)


@lru_cache(maxsize=1)
def _bitmap_font():
    """PIL's bitmap font, cheaper per caption than the FreeType font `load_default()` gives since
    Pillow 10.1. Loaded once per process (it is decoded from an embedded image)."""
    return getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()


@lru_cache(maxsize=1)
def _freetype_font():
    return ImageFont.load_default()


def font(text: str):
    """The bitmap font, or FreeType for text it cannot encode (beyond Latin-1 class names)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return _freetype_font()
    return _bitmap_font()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float in [0, 1] or uint8 → (H, W, 3) uint8."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def grid(
    tiles: list[np.ndarray], captions: list[str], columns: int, tile: int = 96, pad: int = 4
) -> np.ndarray:
    """Tiles (H, W, C) resized to `tile` pixels (nearest: pixels stay visible), each under its
    caption (lines split on '\\n'), in `columns` columns; returns (H, W, 3) uint8."""
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    # The captions' drawn height (a font's glyphs can be taller than LINE), and 2 px of air:
    # a caption never overlaps the top of its picture.
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    drawn = [measure.multiline_textbbox((0, 0), c, font=font(c), spacing=1)[3] for c in captions]
    caption_h = max([lines * LINE, *drawn]) + 2
    cell_h, cell_w = tile + caption_h + pad, tile + pad
    rows = (len(tiles) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * cell_w + pad, rows * cell_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (img, caption) in enumerate(zip(tiles, captions, strict=True)):
        r, c = divmod(i, columns)
        x, y = pad + c * cell_w, pad + r * cell_h
        draw.multiline_text((x, y), caption, fill=(0, 0, 0), font=font(caption), spacing=1)
        pic = Image.fromarray(to_uint8(img)).resize((tile, tile), Image.NEAREST)
        canvas.paste(pic, (x, y + caption_h))
    return np.asarray(canvas)


def mistakes_grid(mistakes, to_unit, names: list[str], count: int = 32) -> np.ndarray | None:
    """The first `count` of `mistakes` — (confidence, uint8 image, true, predicted), most
    confident first — each captioned true -> predicted (confidence); None when there are none."""
    import torch

    shown = mistakes[:count]
    if not shown:
        return None
    unit = to_unit(torch.stack([m[1] for m in shown])).permute(0, 2, 3, 1).numpy()
    captions = [f"{names[t][:12]}\n->{names[p][:9]} {c:.2f}" for c, _, t, p in shown]
    return grid(list(unit), captions, columns=min(8, len(shown)))


def confusion_image(counts: np.ndarray, names: list[str], cell: int = 28) -> np.ndarray:
    """A confusion matrix (rows: true class, columns: predicted) as (H, W, 3) uint8: each cell
    shaded by its share of the true class (white 0 → dark blue 1) and labelled with its count.
    Class names label rows and columns up to 30 classes; beyond that cells are 4 px, unlabelled.
    The matrix is the bottom-right n×n block of cells, 4 px from the edges. Drawn with PIL, not
    matplotlib: it runs during training."""
    n = len(counts)
    labelled = n <= 30
    cell = cell if labelled else 4
    label_w = max(7 * max((len(s) for s in names), default=1), 30) + 8 if labelled else 0
    x0, y0 = 4 + label_w, 2 * LINE + 8  # title row, then the column labels
    canvas = Image.new("RGB", (x0 + n * cell + 4, y0 + n * cell + 4), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    black, white = (0, 0, 0), (255, 255, 255)
    draw.text((x0, 2), "predicted", fill=black, font=_bitmap_font())
    draw.text((4, LINE + 4), "true", fill=black, font=_bitmap_font())
    share = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    for i in range(n):
        if labelled:
            draw.text(
                (4, y0 + i * cell + (cell - LINE) // 2), names[i], fill=black, font=font(names[i])
            )
            draw.text((x0 + i * cell + 2, LINE + 4), names[i][:4], fill=black, font=font(names[i]))
        for j in range(n):
            s = float(share[i, j])
            # White → (8, 48, 107), the dark end of matplotlib's "Blues"; text turns white on dark.
            colour = tuple(round(255 + s * (c - 255)) for c in (8, 48, 107))
            box = (x0 + j * cell, y0 + i * cell, x0 + (j + 1) * cell - 1, y0 + (i + 1) * cell - 1)
            draw.rectangle(box, fill=colour)
            if labelled and counts[i, j]:
                ink = white if s > 0.5 else black
                text = str(int(counts[i, j]))
                draw.text(
                    (box[0] + 2, box[1] + (cell - LINE) // 2), text, fill=ink, font=_bitmap_font()
                )
    return np.asarray(canvas)

"""The playground's pictures, drawn with PIL: feature maps in a diverging colour map with their
scale (positive and negative responses are the point of an edge detector), and the frames of a
kernel's windows over the padded input (Dumoulin's animations)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from cnnlab.analysis.render import font

CELL = 22  # pixels per grid cell in the arithmetic frames
BAR = 30  # pixels of the colour scale under a feature map
MAX_GRID = 16  # the padded input drawn cell by cell up to this side; beyond, sizes only


def diverging(values: np.ndarray, shown: int = 320) -> np.ndarray:
    """(H, W) responses → RGB, blue negative, white 0, red positive, the scale symmetric about
    0 and written under the map; `shown` pixels on the longer side."""
    from matplotlib import colormaps

    scale = float(np.abs(values).max()) or 1.0
    rgb = (colormaps["RdBu_r"]((values / scale + 1) / 2)[..., :3] * 255).astype(np.uint8)
    picture = _fit(Image.fromarray(rgb), shown)
    canvas = Image.new("RGB", (max(picture.width, 240), picture.height + BAR), "white")
    canvas.paste(picture, (0, 0))
    ramp = (colormaps["RdBu_r"](np.linspace(0, 1, 200))[:, :3] * 255).astype(np.uint8)
    canvas.paste(Image.fromarray(np.repeat(ramp[None], 8, 0)), (20, picture.height + 4))
    draw = ImageDraw.Draw(canvas)
    for x, text in ((0, f"{-scale:.3g}"), (110, "0"), (200, f"{scale:.3g}")):
        draw.text((x + 10, picture.height + 15), text, fill="black", font=font(text))
    return np.asarray(canvas)


def gray(image: np.ndarray, shown: int = 320) -> np.ndarray:
    """A photo or a digit as shown beside its feature map, the same size."""
    return np.asarray(_fit(Image.fromarray(image).convert("RGB"), shown))


def _fit(picture: Image.Image, shown: int) -> Image.Image:
    """`shown` pixels on the longer side, nearest neighbour: pixels stay visible."""
    ratio = shown / max(picture.size)
    size = (max(1, round(picture.width * ratio)), max(1, round(picture.height * ratio)))
    return picture.resize(size, Image.NEAREST)


def windows_gif(padded: int, padding: int, out: int, frames: list[list[tuple[int, int]]]) -> bytes:
    """One frame per output position: the padded input (padding hatched grey), the window's
    cells in blue, and the output grid with the current cell in green; an animated GIF."""
    width = (padded + out + 1) * CELL + 20
    height = max(padded, out) * CELL + 20
    pictures = []
    for index, cells in enumerate(frames):
        canvas = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(canvas)
        taken = set(cells)
        for r in range(padded):
            for c in range(padded):
                pad = min(r, c) < padding or max(r, c) >= padded - padding
                fill = "#4a7bd0" if (r, c) in taken else ("#dddddd" if pad else "#ffffff")
                box = (
                    10 + c * CELL,
                    10 + r * CELL,
                    10 + (c + 1) * CELL - 2,
                    10 + (r + 1) * CELL - 2,
                )
                draw.rectangle(box, fill=fill, outline="#888888")
        left = 10 + (padded + 1) * CELL
        for r in range(out):
            for c in range(out):
                fill = "#3aa655" if r * out + c == index else "#ffffff"
                box = (left + c * CELL, 10 + r * CELL, left + (c + 1) * CELL - 2,
                       10 + (r + 1) * CELL - 2)  # fmt: skip
                draw.rectangle(box, fill=fill, outline="#888888")
        pictures.append(canvas)
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=600, loop=0)  # fmt: skip
    return buffer.getvalue()

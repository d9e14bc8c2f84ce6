"""An image file → upright RGB pixels, the one way every reader sees them (image folders, shards,
`predict`, `cnnlab.load`): fully decoded, turned by the EXIF orientation, transparency on white,
16-bit scaled to 8; and the eval resize + centre crop. One-line errors name the file."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps
from torchvision.transforms import v2

from cnnlab.core.errors import UserError


def unreadable(name: str, err: BaseException) -> UserError:
    """The one line for a file that cannot be decoded (truncated, not an image, too large)."""
    if isinstance(err, Image.DecompressionBombError):  # more than 2 × MAX_IMAGE_PIXELS pixels
        return UserError(
            f"cannot read image {name}: {err} Resize it, or raise PIL.Image.MAX_IMAGE_PIXELS if "
            f"you trust the file"
        )
    return UserError(f"cannot read image {name}: {err}")


def load_rgb(path: str, data: bytes | None = None) -> Image.Image:
    """Decode fully (truncation shows up here, not later), upright by the EXIF orientation, and
    convert modes explicitly. `data`: the file's bytes when the caller has read them already."""
    try:
        return open_upright(io.BytesIO(data) if data is not None else path)
    except Exception as err:  # noqa: BLE001 - Pillow's plugins raise OSError, SyntaxError,
        # ValueError, struct.error… on damaged bytes (found by seeded byte flips): all unreadable
        raise unreadable(path, err) from None


def open_upright(fp) -> Image.Image:
    """Decode fully (truncation shows up here, not later), turn by the EXIF orientation, and
    convert to RGB (`to_rgb`)."""
    with Image.open(fp) as img:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
        return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    # Transparent pixels are composited on white, not silently dropped to black.
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    # 16/32-bit integer images are scaled to 8 bits, not clipped to white.
    if img.mode.startswith("I"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray((arr / top * 255).round().clip(0, 255).astype(np.uint8)).convert(
            "RGB"
        )
    return img.convert("RGB")


def eval_pipeline(image_size: int, resize: int | None = None) -> v2.Compose:
    """Decoded PIL image → uint8 (C, S, S): shorter side resized to `resize` (default S), then
    the center S × S crop (ImageNet recipes: resize 256, crop 224). Resized by PIL (antialiased
    bilinear; torchvision's uint8 tensor kernel differs from it by 1 level on ~0.1 % of pixels),
    so a torch-free reader with Pillow reproduces it exactly (docs/predict-export.md's
    classify_onnx.py)."""
    return v2.Compose(
        [
            v2.Resize(resize or image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.PILToTensor(),
        ]
    )

"""Image folders decoded to fixed-size uint8 tensors, with clear errors for bad setups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from cnnlab.errors import UserError


def load_rgb(path: str) -> Image.Image:
    """Decode fully (truncation shows up here, not later) and convert modes explicitly."""
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb(img)
    except OSError as err:  # truncated, empty or not an image: name the file
        raise UserError(f"cannot read image {path}: {err}") from None


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


def open_split(
    folder: Path, image_size: int, expect_classes: list[str] | None = None
) -> ImageFolder:
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist; expected {folder}/<class>/<image>")
    try:
        ds = ImageFolder(
            str(folder),
            loader=load_rgb,
            transform=v2.Compose(
                [
                    v2.PILToTensor(),
                    v2.Resize(image_size, antialias=True),
                    v2.CenterCrop(image_size),
                ]
            ),
        )
    except FileNotFoundError as err:  # raised for an empty class folder or no class folders
        raise UserError(f"image folder {folder}: {err}") from None
    if expect_classes is not None and list(ds.classes) != list(expect_classes):
        differ = sorted(set(ds.classes) ^ set(expect_classes))
        raise UserError(f"classes in {folder} differ from the training split's: {differ}")
    ds.class_names = list(ds.classes)
    return ds


def train_view(ds, image_size: int, crop, sample):
    """The training split of an image folder with its own decode pipeline: a random crop (or the
    eval resize + center crop) and the per-image policy. Val/test keep the eval pipeline."""
    import copy

    base = ds.dataset if isinstance(ds, torch.utils.data.Subset) else ds
    view = copy.copy(base)
    resize = (
        crop
        if crop is not None
        else v2.Compose([v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)])
    )
    view.transform = v2.Compose([v2.PILToTensor(), resize, *([sample] if sample else [])])
    if isinstance(ds, torch.utils.data.Subset):
        return torch.utils.data.Subset(view, ds.indices)
    return view

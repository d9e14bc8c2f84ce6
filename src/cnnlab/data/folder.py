"""Image folders decoded to fixed-size uint8 tensors, with clear errors for bad setups."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from cnnlab.errors import UserError

log = logging.getLogger(__name__)
BAD_IMAGE_MODES = ("fail", "skip")


def load_rgb(path: str) -> Image.Image:
    """Decode fully (truncation shows up here, not later) and convert modes explicitly."""
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb(img)
    except OSError as err:  # truncated, empty or not an image: name the file
        raise UserError(f"cannot read image {path}: {err}") from None
    except Image.DecompressionBombError as err:  # more than 2 × Image.MAX_IMAGE_PIXELS pixels
        raise UserError(
            f"cannot read image {path}: {err} Resize it, or raise PIL.Image.MAX_IMAGE_PIXELS if "
            f"you trust the file"
        ) from None


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


def drop_unreadable(ds: ImageFolder, folder: Path) -> None:
    """Decode every file once and drop those that fail (data.on_bad_image=skip), saying how many
    and which: a skipped file is never silently replaced by another image."""
    bad = {}
    for path, _ in ds.samples:
        try:
            load_rgb(path)
        except UserError as err:
            bad[path] = str(err)
    if not bad:
        return
    ds.samples = [s for s in ds.samples if s[0] not in bad]
    ds.imgs, ds.targets = ds.samples, [t for _, t in ds.samples]
    first = next(iter(bad.values()))
    log.warning(
        "%s: skipped %d unreadable image(s), kept %d (data.on_bad_image=skip); first: %s",
        folder,
        len(bad),
        len(ds.samples),
        first,
    )


def open_split(
    folder: Path,
    image_size: int,
    expect_classes: list[str] | None = None,
    on_bad_image: str = "fail",
) -> ImageFolder:
    if on_bad_image not in BAD_IMAGE_MODES:
        raise UserError(
            f"data.on_bad_image={on_bad_image!r} is not valid; choose one of: "
            f"{', '.join(BAD_IMAGE_MODES)}"
        )
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
    if on_bad_image == "skip":
        drop_unreadable(ds, folder)
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

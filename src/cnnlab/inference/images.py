"""The images a user names on the command line (`images=` of `predict` and `explain`): one file, a
folder read recursively, or a glob, decoded in DataLoader workers exactly as a folder's eval split
is during training (`cnnlab.data.pixels.eval_pipeline`), converted to the network's channels."""

from __future__ import annotations

import errno
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cnnlab.core.errors import UserError
from cnnlab.data.pixels import eval_pipeline, load_rgb

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class Found:
    images: list[Path]  # sorted, image suffixes only
    not_images: list[Path]  # other files met on the way: listed, never fatal
    # Entries that cannot be followed (a symbolic link loop, a link to nothing) → why.
    unreachable: list[tuple[Path, str]] = field(default_factory=list)


def _unreachable(path: Path) -> str | None:
    """Why a link cannot be read (loop, dangling target), or None for anything else."""
    if not path.is_symlink():
        return None
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"link to {os.readlink(path)}, which cannot be read ({err.strerror})"
    return None


def find(spec: str) -> Found:
    """`images=DIR|FILE|GLOB` → the image files, sorted; a folder is read recursively. Links
    that lead nowhere are reported in `unreachable`, not dropped."""
    spec = str(spec)
    path = Path(spec).expanduser()
    if any(c in spec for c in "*?["):
        met = sorted(Path(p) for p in glob.glob(spec, recursive=True))
        if not met:
            raise UserError(f"images={spec} matches no files")
    elif path.is_file():
        met = [path]
    elif path.is_dir():
        met = sorted(
            p
            for p in path.rglob("*")
            if not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    elif _unreachable(path):
        raise UserError(f"images={spec} cannot be read: {_unreachable(path)}")
    else:
        raise UserError(
            f"images={spec} does not exist; give an image file, a folder (read recursively) or "
            f"a glob such as 'photos/**/*.jpg'"
        )
    files = [p for p in met if p.is_file()]
    unreachable = [(p, why) for p in met if (why := _unreachable(p))]
    images = [p for p in files if p.suffix.lower() in SUFFIXES]
    if not images:
        raise UserError(
            f"images={spec} holds no images ({len(files)} other file(s)); image files end in "
            f"{', '.join(SUFFIXES)}"
        )
    return Found(images, [p for p in files if p.suffix.lower() not in SUFFIXES], unreachable)


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """RGB (after `load_rgb`) → the network's channels: grayscale networks get luma (PIL's
    ITU-R 601-2), as the grayscale datasets they were trained on."""
    return img.convert("L") if channels == 1 else img


def eval_resize(data: dict) -> int | None:
    """The shorter side a run's evaluation resizes to before its centre crop (ImageNet: 256);
    None: the crop size itself."""
    return (data.get("source") or {}).get("eval_resize")


class ImageFiles(Dataset):
    """Decoded images as uint8 (C, S, S); an unreadable file yields its error instead of raising,
    so the main process decides (`on_bad_image`) and names it in one line: an exception raised in
    a worker would reach the user wrapped in a traceback."""

    def __init__(
        self, paths: list[Path], channels: int, image_size: int, resize: int | None = None
    ):
        self.paths = list(paths)
        self.channels = channels
        self.transform = eval_pipeline(image_size, resize)

    @classmethod
    def for_model(cls, paths: list[Path], model) -> ImageFiles:
        """Read as the model's run read its evaluation images: size and resize from its config."""
        data = model.config["data"]
        return cls(paths, model.in_channels, int(data["image_size"]), eval_resize(data))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, str]:
        try:
            img = load_rgb(str(self.paths[i]))
        except UserError as err:
            return None, i, str(err)
        return self.transform(to_channels(img, self.channels)), i, ""


def collate(items):
    """→ (uint8 batch or None, indices of its images, [(index, error)] of unreadable files)."""
    good = [(image, i) for image, i, _ in items if image is not None]
    bad = [(i, err) for image, i, err in items if image is None]
    batch = torch.stack([image for image, _ in good]) if good else None
    return batch, [i for _, i in good], bad


def loader(dataset: ImageFiles, batch_size: int, workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        shuffle=False,
    )

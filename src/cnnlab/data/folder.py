"""Image folders decoded to fixed-size uint8 tensors, with clear errors for bad setups."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from cnnlab.core import choices
from cnnlab.core.errors import UserError
from cnnlab.data import decode
from cnnlab.data.pixels import eval_pipeline, load_rgb
from cnnlab.data.tensor_dataset import TensorImages

log = logging.getLogger(__name__)


def drop_unreadable(
    samples: list[tuple[str, int]], folder: Path | str, decode: Callable[[str], object] = load_rgb
) -> list[tuple[str, int]]:
    """Decode every sample once (`decode` of its key: a file path, or a dataset row's key) and
    drop those that fail (data.on_bad_image=skip), saying how many and which: a skipped image is
    never silently replaced by another."""
    bad = {}
    for key, _ in samples:
        try:
            decode(key)
        except UserError as err:
            bad[key] = str(err)
    if not bad:
        return samples
    kept = [s for s in samples if s[0] not in bad]
    first = next(iter(bad.values()))
    log.warning(
        "%s: skipped %d unreadable image(s), kept %d (data.on_bad_image=skip); first: %s",
        folder,
        len(bad),
        len(kept),
        first,
    )
    return kept


def check_bad_image_mode(mode: str, key: str = "on_bad_image") -> None:
    if mode not in choices.BAD_IMAGE_MODES:
        raise UserError(
            f"{key}={mode!r} is not valid; choose one of: {', '.join(choices.BAD_IMAGE_MODES)}"
        )


FILE_SAMPLE = 200  # files opened per split for the size/mode summary


class FolderImages(Dataset):
    """Image files decoded on demand (in DataLoader workers) to uint8 (C, S, S) tensors: the eval
    crop, or the training crop and per-image policy through `cnnlab.data.decode`."""

    in_memory = False
    boxes = None

    def __init__(
        self, samples, class_names: list[str], image_size: int, crop=None, sample=None,
        decoder: str = "auto", train: bool = False, eval_resize: int | None = None,
    ):  # fmt: skip
        self.samples: list[tuple[str, int]] = list(samples)  # (path, class index)
        self.class_names = list(class_names)
        self.image_size, self.eval_resize = image_size, eval_resize
        self.crop, self.sample, self.decoder, self.train = crop, sample, decoder, train
        self.read = (
            decode.pipeline(image_size, crop, sample, decoder, eval_resize) if train else None
        )
        self.eval_transform = eval_pipeline(image_size, eval_resize)

    @property
    def targets(self) -> torch.Tensor:
        return torch.tensor([t for _, t in self.samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, target = self.samples[i]
        if self.read is None:  # eval: PIL, exactly as predict reads a file
            return self.eval_transform(load_rgb(path)), target
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise UserError(f"cannot read image {path}: {err}") from None
        return self.read(data, path), target

    def _with(self, samples, **changes) -> FolderImages:
        keep = dict(crop=self.crop, sample=self.sample, decoder=self.decoder, train=self.train,
                    eval_resize=self.eval_resize)  # fmt: skip
        return self._like(samples, **(keep | changes))

    def _like(self, samples, **settings) -> FolderImages:
        """The same kind of set over other samples (a subclass adds what it reads from)."""
        return FolderImages(samples, self.class_names, self.image_size, **settings)

    def subset(self, indices: torch.Tensor) -> FolderImages:
        return self._with([self.samples[i] for i in indices.tolist()])

    def concat(self, other: FolderImages) -> FolderImages:
        return self._with(self.samples + other.samples)

    def for_training(self, sample, crop, decoder: str = "auto") -> FolderImages:
        """The random crop (or the eval resize + center crop) and the per-image policy."""
        return self._with(self.samples, crop=crop, sample=sample, decoder=decoder, train=True)

    def as_tensors(self, limit: int) -> TensorImages:
        n = min(limit, len(self))
        images = torch.stack([self[i][0] for i in range(n)])
        return TensorImages(images, self.targets[:n], self.class_names)

    def quick_keys(self) -> list[str]:
        keys = []
        for path, _ in self.samples:
            try:
                keys.append(str(os.stat(path).st_size))
            except OSError:  # unreadable: reported where it is read, never "shared"
                keys.append(f"unreadable {path}")
        return keys

    def content_hash(self, i: int) -> str:
        path = self.samples[i][0]
        try:
            return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()
        except OSError:
            return f"unreadable {path}"

    def file_summary(self) -> str:
        sizes, modes = Counter(), Counter()
        for path, _ in self.samples[:FILE_SAMPLE]:
            try:
                with Image.open(path) as img:
                    sizes[img.size] += 1
                    modes[img.mode] += 1
            except Exception:  # noqa: BLE001 - any failure to open damaged bytes (data.pixels)
                modes["unreadable"] += 1
        top = ", ".join(f"{w}×{h}: {n}" for (w, h), n in sizes.most_common(3))
        return f"sizes (first {min(len(self), FILE_SAMPLE)} files) {top}; modes {dict(modes)}"


def open_split(
    folder: Path,
    image_size: int,
    expect_classes: list[str] | None = None,
    on_bad_image: str = "fail",
    eval_resize: int | None = None,
) -> FolderImages:
    check_bad_image_mode(on_bad_image, "data.on_bad_image")
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist; expected {folder}/<class>/<image>")
    try:
        found = ImageFolder(str(folder), loader=load_rgb)  # scans the files; decodes nothing
    except FileNotFoundError as err:  # raised for an empty class folder or no class folders
        raise UserError(f"image folder {folder}: {err}") from None
    if expect_classes is not None and list(found.classes) != list(expect_classes):
        differ = sorted(set(found.classes) ^ set(expect_classes))
        raise UserError(f"classes in {folder} differ from the training split's: {differ}")
    samples = drop_unreadable(found.samples, folder) if on_bad_image == "skip" else found.samples
    return FolderImages(samples, found.classes, image_size, eval_resize=eval_resize)

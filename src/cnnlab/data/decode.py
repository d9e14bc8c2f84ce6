"""Encoded image bytes → uint8 (3, S, S): decode, crop, resize in one step, upright, the fastest
correct way measured on one core here (`make bench`, docs/data-at-scale.md):

- ImageNet-sized JPEGs (500×375) → 224 crop: `torchvision.io.decode_jpeg` + a tensor crop-resize
  432 images/s, PIL's decode + crop-resize 305; reduced-size decoding cannot help, since a 224
  crop of a 375-pixel side is never reduced by 2 or more.
- Phone photos (2016×1512): PIL's draft mode decodes at 1/2, 1/4 or 1/8 scale straight from the
  DCT coefficients when the crop is at least twice the output side: 90 images/s, against 63 for
  `decode_jpeg` and 37 for PIL.

So for the training crop `auto` (the default) reads the header (`jpeg_header`, a few µs),
picks the box in upright coordinates, and uses draft decoding when the box is ≥ 2× the output
side, `decode_jpeg` otherwise; other formats and files `decode_jpeg` refuses go through PIL.
The eval crop (Resize + CenterCrop) always decodes with PIL, exactly as `predict` and `eval`
read files, so a model scores the same whichever path read its images. EXIF orientation is
applied on every path (phone photos are stored sideways with a rotation tag).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageOps
from torchvision.io import ImageReadMode

try:  # deprecated in torchvision 0.29 for TorchCodec; without it JPEGs go through PIL
    from torchvision.io import decode_jpeg
except ImportError:  # pragma: no cover - a future torchvision
    decode_jpeg = None
from torchvision.transforms import v2

from cnnlab.core.errors import UserError
from cnnlab.data import jpeg_header
from cnnlab.data.pixels import eval_pipeline, open_upright, unreadable

DRAFT_MAX = 8  # libjpeg scales by 1/2, 1/4 or 1/8

Box = tuple[int, int, int, int]  # top, left, height, width in upright pixels


class CropBox:
    """Where to cut: a random-resized crop (training) or the central square (eval: the same as
    Resize(S) + CenterCrop(S)), always resized to S × S."""

    def __init__(
        self, size: int, random_crop: v2.RandomResizedCrop | None = None, resize: int | None = None
    ):
        self.size, self.random_crop, self.resize = size, random_crop, resize  # resize: eval only

    @classmethod
    def from_transform(cls, size: int, crop, resize: int | None = None) -> CropBox:
        if crop is None or isinstance(crop, v2.RandomResizedCrop):
            return cls(size, crop, resize)
        raise UserError(
            f"augment.train_crop={type(crop).__name__} is not supported for image files; use "
            f"cnnlab.data.policies.train_crop (RandomResizedCrop) or null"
        )

    def __call__(self, height: int, width: int) -> Box:
        if self.random_crop is not None:  # torch's global RNG: seeded per sample by the caller
            p = self.random_crop.make_params([torch.empty((0, height, width), dtype=torch.uint8)])
            return p["top"], p["left"], p["height"], p["width"]
        side = min(height, width)
        return (height - side) // 2, (width - side) // 2, side, side


def decode(data: bytes, box: CropBox, decoder: str = "auto", name: str = "image") -> torch.Tensor:
    """uint8 (3, S, S). `name` (a path) only labels errors."""
    try:
        return _decode(data, box, decoder)
    except Exception as err:  # noqa: BLE001 - any decoder's failure on damaged bytes (pixels.py)
        raise unreadable(name, err) from None


def _decode(data: bytes, box: CropBox, decoder: str) -> torch.Tensor:
    if box.random_crop is None:
        return _eval(data, box)
    if decoder == "pil" or decode_jpeg is None or data[:2] != b"\xff\xd8":  # not a JPEG
        return _pil(data, box)
    try:
        return _auto_jpeg(data, box) if decoder == "auto" else _torchvision(data, box)
    except (OSError, RuntimeError, ValueError):  # libjpeg-turbo refused: PIL reads it or says why
        return _pil(data, box)


def _torchvision(data: bytes, box: CropBox) -> torch.Tensor:
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    img = decode_jpeg(raw, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    return crop_resize(img, box(*img.shape[-2:]), box.size)


def crop_resize(img: torch.Tensor, b: Box, size: int) -> torch.Tensor:
    return TF.resized_crop(img, *b, [size, size], antialias=True)


def _pil(data: bytes, box: CropBox) -> torch.Tensor:
    img = open_upright(io.BytesIO(data))
    top, left, h, w = box(img.height, img.width)
    return pil_to_tensor(_resize_box(img, (left, top, left + w, top + h), box.size))


def _resize_box(img: Image.Image, xyxy, size: int) -> Image.Image:
    """PIL's crop + resize in one pass (antialiased bilinear, like torchvision's)."""
    return img.resize((size, size), Image.Resampling.BILINEAR, box=xyxy)


def _eval(data: bytes, box: CropBox) -> torch.Tensor:
    return _eval_transform(box.size, box.resize)(open_upright(io.BytesIO(data)))


@functools.cache
def _eval_transform(size: int, resize: int | None):
    """One Resize + CenterCrop per size, built once (not per image)."""
    return eval_pipeline(size, resize)


def _auto_jpeg(data: bytes, box: CropBox) -> torch.Tensor:
    head = jpeg_header.scan(data)  # a few µs; None: PIL reads or refuses it
    if head is None or head.components not in (1, 3):  # odd markers, CMYK
        return _pil(data, box)
    swapped = head.orientation in (5, 6, 7, 8)
    uh, uw = (head.width, head.height) if swapped else (head.height, head.width)  # upright
    top, left, bh, bw = box(uh, uw)
    factor = min(bh, bw) / box.size
    if factor < 2:
        return crop_resize(_torchvision_full(data), (top, left, bh, bw), box.size)
    scale = 2 ** int(math.log2(min(factor, DRAFT_MAX)))
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (math.ceil(head.width / scale), math.ceil(head.height / scale)))
        img.load()
        img = ImageOps.exif_transpose(img).convert("RGB")
        s = uw / img.width  # the scale libjpeg chose
        out = _resize_box(img, (left / s, top / s, (left + bw) / s, (top + bh) / s), box.size)
    return pil_to_tensor(out)


def _torchvision_full(data: bytes) -> torch.Tensor:
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return decode_jpeg(raw, mode=ImageReadMode.RGB, apply_exif_orientation=True)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def pipeline(
    size: int,
    crop=None,
    sample: Callable | None = None,
    decoder: str = "auto",
    eval_resize: int | None = None,
) -> Callable[[bytes, str], torch.Tensor | Deferred]:
    """bytes (and a name for errors) → the crop, then the per-image policy `sample`. With
    `decoder="gpu"` a JPEG comes back `Deferred` (bytes and its crop box) for `gpu_batch`."""
    box = CropBox.from_transform(size, crop, eval_resize)

    def run(data: bytes, name: str = "image") -> torch.Tensor | Deferred:
        if decoder == "gpu" and box.random_crop is not None:
            deferred = defer(data, box)
            if deferred is not None:
                return deferred
        img = decode(data, box, "auto" if decoder == "gpu" else decoder, name)
        return sample(img) if sample is not None else img

    return run


class Deferred(NamedTuple):
    """A JPEG left for the GPU: its bytes (1-D uint8) and its crop box (top, left, h, w)."""

    data: torch.Tensor
    box: torch.Tensor


def defer(data: bytes, box: CropBox) -> Deferred | None:
    """Bytes + box from the header alone; None for files nvJPEG cannot take as they are (not
    JPEG, not RGB/grey, or turned by EXIF: CUDA decoding ignores the orientation tag)."""
    head = jpeg_header.scan(data)
    if head is None or head.components not in (1, 3) or head.orientation != 1:
        return None  # decoded on the CPU, which turns it upright or names the file
    b = box(head.height, head.width)
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return Deferred(raw, torch.tensor(b, dtype=torch.int64))


def collate(items):
    """Default collate, except that `Deferred` images stay a list (their sizes differ)."""
    images, targets = zip(*items, strict=True)
    return list(images), torch.as_tensor(targets)


def gpu_batch(images: list, size: int, sample: Callable | None, device) -> torch.Tensor:
    """One batch of `Deferred` JPEGs (and images the workers already decoded) → uint8 (N, 3, S, S)
    on `device`: nvJPEG decodes the whole list in one call, crops run on the GPU, then the
    per-image policy."""
    todo = [i for i, im in enumerate(images) if isinstance(im, Deferred)]
    out: list[torch.Tensor | None] = [
        None if isinstance(im, Deferred) else im.to(device, non_blocking=True) for im in images
    ]
    if todo:
        decoded = decode_jpeg([images[i].data for i in todo], mode=ImageReadMode.RGB, device=device)
        for i, img in zip(todo, decoded, strict=True):
            cut = crop_resize(img, tuple(images[i].box.tolist()), size)
            out[i] = sample(cut) if sample is not None else cut
    return torch.stack(out)

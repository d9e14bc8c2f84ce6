"""Decoding at the limit: per-core images/s of the training pipeline (decode + random-resized crop
to 224 + flip) on photo-like JPEGs (`cnnlab.data.photo_corpus`, 500×375, ~50 KB), for an image
folder and for shards, against a plain decode-only loop on the same files and torchvision's
classification reference pipeline; each decoder (auto, pil, torchvision) on ImageNet-sized and on
phone-sized (2016×1512) photos; and what `max_side` re-encoding saves. One process, one thread:
the figures are per core. `python benchmarks/decode.py` prints these rows alone.
"""

from __future__ import annotations

import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from benchmarks.bench_common import REPS, rows, stats

GPU_RATE = 3000  # images/s one modern GPU trains ResNet-50 at with mixed precision (issue 18)
SIZE = 224


BLOCK = 40  # images per timed block; blocks of all functions alternate


def _turns(fns: dict, items) -> dict[str, list[float]]:
    """REPS passes over `items` for every function, alternating in blocks of BLOCK images (a
    fraction of a second) so the shared machine's drift hits all alike: name → images/s."""
    out = {name: [] for name in fns}
    for fn in fns.values():  # warm-up: imports, first allocations
        for item in items[:8]:
            fn(item)
    names = list(fns)
    for _ in range(REPS):
        spent = dict.fromkeys(fns, 0.0)
        for b, first in enumerate(range(0, len(items), BLOCK)):
            block = items[first : first + BLOCK]
            for name in names[b % len(names) :] + names[: b % len(names)]:  # rotate who starts
                start = time.perf_counter()
                for item in block:
                    fns[name](item)
                spent[name] += time.perf_counter() - start
        for name in fns:
            out[name].append(len(items) / spent[name])
    return out


def _cycle(dataset):
    """The dataset's own iteration (the training loader's path), epoch after epoch."""
    while True:
        yield from dataset


def _cores(rate: float) -> str:
    return f"{GPU_RATE / rate:.1f} cores per GPU at {GPU_RATE:,} img/s"


def decode_rows(train_images: int = 600) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _rows(train_images)
    finally:
        torch.set_num_threads(threads)


def _rows(train_images: int) -> None:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    from cnnlab.data import decode, photo_corpus
    from cnnlab.data.folder import open_split
    from cnnlab.data.policies import policy, train_crop
    from cnnlab.data.shards import ShardImages, write_split

    tmp = Path(tempfile.mkdtemp())
    root = photo_corpus.write(tmp / "corpus", {"train": train_images})
    write_split(root / "train", tmp / "shards", chunk_mb=16, workers=2)
    write_split(root / "train", tmp / "small", chunk_mb=16, workers=2, max_side=320)
    flip, crop = policy("none", hflip=True), train_crop(SIZE)
    folder = open_split(root / "train", SIZE).for_training(flip, crop)
    shards = ShardImages(str(tmp / "shards"), SIZE).for_training(flip, crop)
    small = ShardImages(str(tmp / "small"), SIZE).for_training(flip, crop)
    paths = [p for p, _ in folder.samples]
    reference = ImageFolder(
        str(root / "train"),
        transform=v2.Compose([v2.RandomResizedCrop(SIZE), v2.RandomHorizontalFlip(),
                              v2.PILToTensor()]),
    )  # fmt: skip

    def plain(path: str):  # the decode-only ceiling: read and decode, nothing else
        with Image.open(path) as img:
            return img.convert("RGB")

    streams = {
        name: _cycle(split.stream(seed=0, shuffle=True))
        for name, split in (("s", shards), ("m", small))
    }
    twin = open_split(root / "train", SIZE).for_training(flip, crop)  # A/A: the noise floor
    idx = list(range(len(paths)))
    fns = {
        "plain": lambda i: plain(paths[i]),
        "folder": lambda i: folder[i],
        "twin": lambda i: twin[i],
        "shards": lambda i: next(streams["s"]),
        "reference": lambda i: reference[i],
        "small": lambda i: next(streams["m"]),
    }
    got = _turns(fns, idx)
    plain_rate = statistics.median(got["plain"])
    for name, label in (
        ("folder", "image folder (decode + crop 224 + flip), 1 core"),
        ("shards", "shards (decode + crop 224 + flip), 1 core"),
        ("reference", "torchvision reference (PIL + RandomResizedCrop + flip), 1 core"),
    ):
        rate = statistics.median(got[name])
        rows.append((f"train pipeline images/s, {label}; {_cores(rate)}", stats(got[name]),
                     stats(got["plain"]), f"{rate / plain_rate:.2f}"))  # fmt: skip
    for name, label in (("shards", "shards ÷ image folder"),
                        ("twin", "noise floor: image folder ÷ the same image folder")):  # fmt: skip
        ratios = [a / b for a, b in zip(got[name], got["folder"], strict=True)]
        per_pass = " ".join(f"{r:.3f}" for r in ratios)
        rows.append((f"{label}, train pipeline images/s (ratio per pass)", "", per_pass,
                     f"{statistics.median(ratios):.3f}"))  # fmt: skip
    small_rate = statistics.median(got["small"]) / statistics.median(got["shards"])
    rows.append((f"shards re-encoded to max_side=320 ({_mb(tmp / 'small'):.0f} MB) vs as stored "
                 f"({_mb(tmp / 'shards'):.0f} MB): train pipeline images/s, 1 core",
                 stats(got["small"]), stats(got["shards"]), f"{small_rate:.2f}"))  # fmt: skip
    _decoder_rows(paths[:120], decode)
    shutil.rmtree(tmp, ignore_errors=True)


def _mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*.bin")) / 1e6


def _decoder_rows(paths: list[str], decode) -> None:
    """Each decoder on the same training crops: ImageNet-sized files, then the same pictures
    re-encoded at phone size (2016×1512, where reduced-size decoding pays)."""
    from cnnlab.data.policies import train_crop

    box = decode.CropBox(SIZE, train_crop(SIZE))
    sizes = {"500×375": [Path(p).read_bytes() for p in paths]}
    phone = []
    for data in sizes["500×375"][:40]:
        out = io.BytesIO()
        Image.open(io.BytesIO(data)).resize((2016, 1512)).save(out, "JPEG", quality=90)
        phone.append(out.getvalue())
    sizes["2016×1512"] = phone
    for label, blobs in sizes.items():
        fns = {d: (lambda b, d=d: decode.decode(b, box, d)) for d in ("auto", "pil", "torchvision")}
        got = _turns(fns, blobs)
        base = statistics.median(got["pil"])
        for name in ("auto", "torchvision"):
            rate = statistics.median(got[name])
            rows.append((f"decoder {name} vs pil, {label} JPEG → crop 224, 1 core; "
                         f"{_cores(rate)} (pil: {GPU_RATE / base:.1f})", stats(got[name]),
                         stats(got["pil"]), f"{rate / base:.2f}"))  # fmt: skip


if __name__ == "__main__":
    decode_rows()
    for row in rows:
        print(" | ".join(row))

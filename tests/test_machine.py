"""The machine's own failures (read-only folders, a full disk) end in one line, and nothing that
was already saved is lost. Real mounts where this process may mount (root, as in CI here), and a
monkeypatched variant of each that always runs."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest
import torch

from cnnlab.cli.runner import machine_failure
from cnnlab.core import checkpoint_io
from cnnlab.core.checkpoint_io import AtomicCheckpointIO
from cnnlab.core.errors import UserError


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A read-only folder (a read-only bind mount: chmod does not stop root)."""
    target = tmp_path / "ro"
    target.mkdir()
    if not (
        _mount("--bind", str(target), str(target)) and _mount("-o", "remount,bind,ro", str(target))
    ):
        pytest.skip("cannot mount here (needs root)")
    yield target
    subprocess.run(["umount", str(target)], check=False)


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 20 MB tmpfs: room for one checkpoint of the test network (≈ 13 MB), not for two."""
    target = tmp_path / "disk"
    target.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=20m", "tmpfs", str(target)):
        pytest.skip("cannot mount here (needs root)")
    yield target
    subprocess.run(["umount", str(target)], check=False)


def _errors(proc) -> list[str]:
    return [x for x in proc.stderr.splitlines() if x.startswith("error:")]


def test_read_only_output_folder_is_one_line_before_any_work(command, read_only):
    proc = command("train", "debug=test", "data=fake", f"paths.log_dir={read_only}")
    assert proc.returncode == 1 and len(_errors(proc)) == 1, proc.stderr[-2000:]
    assert (
        f"cannot write {read_only}" in _errors(proc)[0]
        and "Read-only file system" in _errors(proc)[0]
    )
    assert proc.stderr.strip().splitlines() == _errors(proc)  # no warning, no traceback


def test_read_only_data_folder_is_one_line(command, read_only, tmp_path):
    proc = command("train", "debug=test", env={"CNNLAB_DATA": str(read_only)})
    assert proc.returncode == 1 and len(_errors(proc)) == 1, proc.stderr[-2000:]
    assert f"cannot write {read_only}" in _errors(proc)[0] and "CNNLAB_DATA" in _errors(proc)[0]


@pytest.mark.slow
def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(command, small_disk, tmp_path):
    args = (
        "train",
        "debug=test",
        "data=fake",
        "run_id=full",
        "trainer.max_epochs=2",
        "scheduler=none",
    )
    proc = command(*args, f"paths.log_dir={small_disk}")
    errors = _errors(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-3000:]
    last = small_disk / "train" / "runs" / "full" / "checkpoints" / "last.ckpt"
    assert f"no space left on device writing {last.parent}" in errors[0]
    assert "MB free)" in errors[0] and "is intact" in errors[0]
    state = torch.load(last, weights_only=True)  # epoch 0's checkpoint still loads
    assert state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == 1
    assert not list(last.parent.glob(".*tmp*"))  # the half-written file is gone


def test_disk_full_mapping_without_a_mount(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 0, "global_step": 1, "w": torch.ones(1000)}, path)

    def full(obj, fh):
        fh.write(b"x" * 4096)
        raise RuntimeError(
            "[enforce fail at inline_container.cc:664] . unexpected pos 3484032 vs 3483924"
        )

    monkeypatch.setattr(checkpoint_io.torch, "save", full)
    monkeypatch.setattr(
        checkpoint_io.shutil, "disk_usage", lambda _: type("U", (), {"free": 1024})()
    )
    expected = r"no space left on device writing .*last\.ckpt \(needs ≈ 0 MB, 0 MB free\); "
    with pytest.raises(UserError, match=expected + ".* is intact"):
        io.save_checkpoint({"epoch": 1, "global_step": 2, "w": torch.zeros(1000)}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_machine_errors_map_to_one_line_with_a_hint():
    line = machine_failure(OSError(errno.EROFS, "Read-only file system", "/data/x"))
    assert line == (
        "cannot write /data/x: Read-only file system; choose a writable folder "
        "(paths.log_dir=… for runs, CNNLAB_DATA=… for data)"
    )
    assert "free some space" in machine_failure(
        OSError(errno.ENOSPC, "No space left on device", "/x")
    )
    assert machine_failure(OSError(errno.ENOENT, "No such file or directory", "/x")) is None

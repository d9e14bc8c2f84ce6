"""core.files: a folder is replaced without a moment when neither version is whole, and a
checkpoint's hard-linked twin falls back to a copy on filesystems without hard links."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from cnnlab.core import files
from cnnlab.core.checkpoint_io import AtomicCheckpointIO


def _version(folder, text: str) -> None:
    (folder / "a.txt").write_text(text)
    (folder / "b.txt").write_text(text)


def _whole(folder) -> str:
    texts = {(folder / name).read_text() for name in ("a.txt", "b.txt")}
    assert len(texts) == 1, texts  # never half of one version and half of the other
    return texts.pop()


def test_a_folder_is_swapped_in_one_step(tmp_path):
    out = tmp_path / "report"
    with files.atomic_folder(out) as new:
        _version(new, "old")
    seen = []
    real = files._exchange

    def watched(a, b):  # what a reader would find at `out` just before and after the swap
        seen.append(_whole(out))
        done = real(a, b)
        seen.append(_whole(out))
        return done

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(files, "_exchange", watched)
        with files.atomic_folder(out) as new:
            _version(new, "new")
    assert seen == ["old", "new"] and _whole(out) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # nothing left beside it


def test_without_the_swap_a_failed_move_puts_the_old_version_back(tmp_path, monkeypatch):
    out = tmp_path / "report"
    with files.atomic_folder(out) as new:
        _version(new, "old")
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)  # a system without renameat2
    real = os.replace

    def failing(src, dst):
        if str(dst) == str(out) and ".tmp" in str(src):
            raise OSError(errno.EIO, "I/O error", str(dst))
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", failing)
    with pytest.raises(OSError), files.atomic_folder(out) as new:
        _version(new, "new")
    assert _whole(out) == "old"
    monkeypatch.setattr(files.os, "replace", real)
    with files.atomic_folder(out) as new:  # and when it works, the aside copy is gone after
        _version(new, "new")
    assert _whole(out) == "new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]


def test_last_is_a_copy_where_hard_links_are_refused(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted", str(dst))

    monkeypatch.setattr(files.os, "link", no_links)
    io = AtomicCheckpointIO()
    state = {"epoch": 0, "global_step": 3, "state_dict": {"w": torch.ones(2)}}
    io.save_checkpoint(state, tmp_path / "best.ckpt")
    io.save_checkpoint(state, tmp_path / "last.ckpt")  # the same state: its twin, copied
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert torch.equal(last["state_dict"]["w"], torch.ones(2))
    assert os.stat(tmp_path / "last.ckpt").st_ino != os.stat(tmp_path / "best.ckpt").st_ino


def test_other_link_failures_are_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "a").write_text("x")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(files.os, "link", full)
    with pytest.raises(OSError, match="No space left"):
        files.link_or_copy(tmp_path / "a", tmp_path / "b")


def test_what_a_killed_writer_left_is_removed_by_the_next_write(tmp_path):
    out = tmp_path / "test"
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    left = tmp_path / f".test.{gone}.tmp"  # a writer killed mid-write, pid now unused
    left.mkdir()
    (left / "half.csv").write_text("1,2")
    alive = tmp_path / f".test.{os.getppid()}.tmp"  # a live process's: not ours to remove
    alive.mkdir()
    with files.atomic_folder(out) as new:
        _version(new, "new")
    assert not left.exists() and alive.exists() and _whole(out) == "new"


def test_lightning_reads_checkpoints_as_data_whatever_it_asks(tmp_path):
    """Lightning's reads go through the plugin (a resume, lr_find's own temporary file): a
    pickle that would run code is refused even when the caller passes weights_only=False."""
    import pickle

    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": Exploit()}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(pickle.UnpicklingError):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)
    assert not marker.exists()
    state = {"epoch": 0, "global_step": 1, "state_dict": {"w": torch.ones(2)}}
    AtomicCheckpointIO().save_checkpoint(state, tmp_path / "ok.ckpt")
    loaded = AtomicCheckpointIO().load_checkpoint(tmp_path / "ok.ckpt")
    assert loaded["state_dict"]["w"].device.type == "cpu"

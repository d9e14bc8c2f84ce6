"""Checkpoint writes that a kill -9 cannot corrupt: the file is written next to its final name,
flushed and fsynced, then renamed over it (an atomic replace on POSIX). Lightning's default moves
a file from the system temp dir, which is not atomic across filesystems and never fsyncs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Also: best.ckpt and last.ckpt saved at the same step hold the same training state, so the
    second is a hard link to the first instead of a second write (ResNet-18 with AdamW: 135 MB and
    ~0.4 s per epoch on this machine's disk)."""

    def __init__(self) -> None:
        super().__init__()
        self._previous: tuple[Path, tuple] | None = None  # last file written, (epoch, step)

    def _twin(self, path: Path, state: tuple) -> Path | None:
        """The file just written for the same (epoch, step) in the same folder, if any."""
        if self._previous is None or None in state or self._previous[1] != state:
            return None
        earlier = self._previous[0]
        same_folder = earlier != path and earlier.parent == path.parent
        return earlier if same_folder and earlier.is_file() else None

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = (checkpoint.get("epoch"), checkpoint.get("global_step"))
        twin = self._twin(path, state)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            if twin is not None:
                os.link(twin, tmp)  # same bytes, one inode; replacing either later is safe
            else:
                with open(tmp, "wb") as fh:
                    torch.save(checkpoint, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        self._previous = (path, state)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)

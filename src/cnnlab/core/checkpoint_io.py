"""Checkpoint writes that a kill -9 cannot corrupt: the file is written next to its final name,
flushed and fsynced, then renamed over it (an atomic replace on POSIX). Lightning's default moves
a file from the system temp dir, which is not atomic across filesystems and never fsyncs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cnnlab.core.errors import UserError
from cnnlab.core.files import Pending, link_or_copy

MB = 1024 * 1024


class AtomicCheckpointIO(TorchCheckpointIO):
    """Also: best.ckpt and last.ckpt saved at the same step hold the same training state, so the
    second is a hard link to the first instead of a second write of the whole file (a copy on
    filesystems without hard links: `core.files.link_or_copy`)."""

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

    def _no_space(self, path: Path, tmp: Path, err: Exception) -> UserError | None:
        """A full disk, in one line: torch reports it as `RuntimeError: [enforce fail at
        inline_container.cc] unexpected pos …`, not as ENOSPC, so the free space decides."""
        written = tmp.stat().st_size if tmp.exists() else 0
        previous = path.stat().st_size if path.exists() else 0
        needs = max(written, previous)
        free = shutil.disk_usage(path.parent).free
        if getattr(err, "errno", None) != 28 and free > max(needs, MB):  # 28: ENOSPC
            return None
        intact = f"{path} is intact" if path.exists() else f"no earlier {path.name} was written"
        return UserError(
            f"no space left on device writing {path} (needs ≈ {needs / MB:.0f} MB, "
            f"{free / MB:.0f} MB free); {intact}"
        )

    def load_checkpoint(
        self, path, map_location=lambda storage, loc: storage, weights_only=None
    ) -> dict[str, Any]:
        """Every checkpoint Lightning reads through this plugin (a resume, the range test's own
        temporary one) is read as data: weights_only=True whatever the caller asked for."""
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = (checkpoint.get("epoch"), checkpoint.get("global_step"))
        twin = self._twin(path, state)
        pending = Pending(path, durable=True)  # fsynced, and the rename too: a power cut
        try:
            if twin is not None:
                link_or_copy(twin, pending.tmp)  # same bytes; replacing either later is safe
            else:
                with open(pending.tmp, "wb") as fh:
                    torch.save(checkpoint, fh)
            pending.commit()
        except (OSError, RuntimeError) as err:
            full = self._no_space(path, pending.tmp, err)
            if full is None:
                raise
            raise full from None
        finally:
            pending.discard()
        self._previous = (path, state)

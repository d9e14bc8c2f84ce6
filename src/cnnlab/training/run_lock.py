"""One writer per run folder: an exclusive OS file lock (`flock`) on `<run>/.lock`, held for
the whole run. The kernel drops it when the process ends, however it ends (kill -9 included),
so a stale lock cannot exist; a second process for the same folder stops at once, naming the
holder. Only rank 0 takes it: DDP's other ranks write nothing of their own there."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from cnnlab.errors import UserError

LOCK = ".lock"


@contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split() or ["?", "?"]
            raise UserError(
                f"run folder {run_dir} is in use by process {holder[0]} (started {holder[-1]}); "
                f"wait for it to finish, or choose another run_id"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {datetime.now():%Y-%m-%dT%H:%M:%S}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock

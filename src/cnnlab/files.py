"""The machine's own failures, named: writes that fail on a full disk or a read-only folder
raise an OSError that names the file (a buffered `write` or `close` does not), and a
destination is checked before minutes of work are spent on what it would hold."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OSError inside the block names `path` when it named no file itself."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(path)) from None
        raise


def check_writable(folder: Path) -> list[Path]:
    """Make `folder` (and missing parents) and prove a file can be written in it; returns the
    folders made, highest first, so a caller that fails later can remove them. Read-only,
    full or forbidden: an OSError naming the folder."""
    folder = Path(folder)
    made = [p for p in reversed([folder, *folder.parents]) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as err:
        for p in reversed(made):
            try:
                p.rmdir()
            except OSError:
                break
        code = err.errno or errno.EACCES
        raise OSError(code, err.strerror or os.strerror(code), str(folder)) from None
    return made

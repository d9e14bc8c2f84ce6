"""Every file and folder cnnlab writes appears whole or not at all, and the machine's own failures
are named. `atomic_file` / `write_atomic` / `atomic_folder` are the one way to write: the content
goes to a temporary name beside the final one (same filesystem, so the rename is atomic on POSIX),
is flushed, then renamed over it; a failure or a kill leaves the previous version whole. Each
process has its own temporary name (DDP ranks and sweep jobs may write the same file at once; the
bytes are the same, the last rename wins). Writes that fail on a full disk or a read-only folder
raise an OSError that names the file (a buffered `write` or `close` does not), and a destination
is checked before minutes of work are spent on what it would hold."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
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


def temporary_name(path: Path, keep_suffix: bool = False) -> Path:
    """Where `path`'s next version is written before the rename: hidden, one per process; with
    `keep_suffix` it still ends like `path` (exporters that choose the format by the ending)."""
    suffix = path.suffix if keep_suffix else ""
    stem = path.name[: len(path.name) - len(suffix)]
    return path.with_name(f".{stem}.{os.getpid()}.tmp{suffix}")


class Pending:
    """The next version of file `path`, written at `tmp`: `commit` renames it over `path` (after an
    fsync of the file, and of the folder after the rename, when `durable`: a checkpoint survives a
    power cut), `discard` removes it and leaves `path` as it was."""

    def __init__(self, path: Path, *, durable: bool = False, keep_suffix: bool = False) -> None:
        self.path, self.durable = Path(path), durable
        self.tmp = temporary_name(self.path, keep_suffix)

    def commit(self) -> None:
        with naming(self.path):
            if self.durable:
                _fsync(self.tmp)
            os.replace(self.tmp, self.path)
            if self.durable:
                _fsync(self.path.parent)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: Path, *, durable: bool = False, keep_suffix: bool = False) -> Iterator[Path]:
    """Yields the temporary path to write; a clean exit commits it, an error discards it."""
    pending = Pending(path, durable=durable, keep_suffix=keep_suffix)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()  # nothing left after a commit


def write_atomic(path: Path, data: str | bytes, *, durable: bool = False) -> None:
    """`path` holds `data` (text is UTF-8), whole or not at all."""
    with atomic_file(path, durable=durable) as tmp, naming(path):
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


# Filesystems that refuse hard links (some FUSE mounts, SMB, exFAT) answer with one of these.
NO_LINKS = (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS)


def link_or_copy(source: Path, target: Path) -> None:
    """`target` holds `source`'s bytes: a hard link (no copy, one inode), or a copy where the
    filesystem has no hard links (as timm does for its `last` checkpoint)."""
    try:
        os.link(source, target)
    except OSError as err:
        if err.errno not in NO_LINKS:
            raise
        with naming(target):
            shutil.copyfile(source, target)


_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths in one step


def _exchange(a: Path, b: Path) -> bool:
    """Swap `a` and `b` atomically (Linux renameat2); False where the system or filesystem
    cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd = -100  # AT_FDCWD
    done = renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(new: Path, path: Path) -> None:
    """Put folder `new` at `path`. An earlier `path` is exchanged with `new` in one atomic step
    (then deleted), so `path` always holds one whole version; without that system call it is
    renamed aside first and renamed back if the move fails (a kill between the two renames
    leaves both versions whole, under hidden names beside `path`)."""
    if not path.exists():
        os.replace(new, path)
        return
    if _exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)  # now the earlier version
        return
    aside = path.with_name(f".{path.name}.{os.getpid()}.old")
    os.replace(path, aside)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale(path: Path) -> None:
    """Delete what a killed writer left beside `path` (`.<name>.<pid>.tmp` or `.old` of a
    process that no longer runs): a `kill -9` in the middle of a write leaves its temporary
    folder, and nothing else would ever remove it."""
    for left in path.parent.glob(f".{path.name}.*"):
        pid = left.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            if left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yields an empty temporary folder to fill; on a clean exit it replaces the folder `path`
    (`_swap_in`: never a moment without a whole version), on an error it is removed and `path`
    stays whole."""
    path = Path(path)
    tmp = temporary_name(path)
    if path.parent.is_dir():
        remove_stale(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

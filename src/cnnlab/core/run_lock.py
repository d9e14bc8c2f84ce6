"""One writer per run folder: an exclusive OS file lock (`flock`) on `<run>/.lock`, held for
the whole run. The kernel drops it when the process ends, however it ends (kill -9 included),
so a stale lock cannot exist; a second process for the same folder stops at once, naming the
holder. Only rank 0 takes it: DDP's other ranks write nothing of their own there.

The command line takes it before Hydra writes its first byte into the folder (`.hydra/`, the
job's log: `cnnlab.cli.run_guard`), so a refused start leaves the live run untouched; `fit`
takes it again for callers that skip the command line (tests, notebooks), which is a no-op in
the process that already holds it. Imports nothing heavy: it runs before torch is imported.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from cnnlab.core.checkpoint import LOCK
from cnnlab.core.errors import RunFolderBusy, UserError

_HELD: dict[Path, int] = {}  # run folder (absolute) → the open descriptor that holds its lock
# run folders this process made → the highest folder it made for them (outputs/train/<date>):
# the only folders a refused start may remove.
_CREATED: dict[Path, Path] = {}


def _key(run_dir: Path) -> Path:
    return Path(os.path.abspath(run_dir))


def acquire(run_dir: Path) -> bool:
    """Lock `run_dir` (made if missing) for this process; False if this process already holds
    it. A folder held by another process raises RunFolderBusy naming the holder; nothing in the
    folder is written or changed then (the lock file is opened, never truncated, unless ours)."""
    key = _key(run_dir)
    if key in _HELD:
        return False
    highest = next((p for p in [key, *key.parents] if p.parent.is_dir()), key)
    existed = key.is_dir()
    key.mkdir(parents=True, exist_ok=True)
    fd = os.open(key / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").split() or ["?", "?"]
        os.close(fd)
        raise RunFolderBusy(
            f"run folder {key} is in use by process {holder[0]} (started {holder[-1]}); "
            f"wait for it to finish, or choose another run_id"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {datetime.now():%Y-%m-%dT%H:%M:%S}\n".encode(), 0)
    _HELD[key] = fd
    if not existed:
        _CREATED[key] = highest
    return True


def release(run_dir: Path) -> None:
    key = _key(run_dir)
    _CREATED.pop(key, None)
    fd = _HELD.pop(key, None)
    if fd is not None:
        os.close(fd)  # releases the lock


def release_all() -> None:
    """When a command ends in a process that goes on (the test suite, a notebook)."""
    for run_dir in list(_HELD):
        release(run_dir)


def created_here(run_dir: Path) -> bool:
    """This process made the folder (it did not exist when the lock was taken)."""
    return _key(run_dir) in _CREATED


BOOKKEEPING = (".hydra", LOCK)  # and the job's log files (*.log): what every start writes


def holds_results(run_dir: Path) -> bool:
    """The folder holds more than what any start writes (checkpoints, events, predictions)."""
    names = {p.name for p in Path(run_dir).iterdir()} if Path(run_dir).is_dir() else set()
    return any(n not in BOOKKEEPING and not n.endswith(".log") for n in names)


def remove_created(run_dir: Path, *, keep_results: bool = False) -> None:
    """Remove a folder this process made, and the empty parents it made for it (a refused start
    leaves no `outputs/train/<date>/`); anything another process put there stays. With
    `keep_results`, a folder that holds results is kept."""
    key = _key(run_dir)
    highest = _CREATED.get(key)
    if highest is None or (keep_results and holds_results(key)):
        return
    shutil.rmtree(key, ignore_errors=True)
    for parent in key.parents:
        if not parent.is_relative_to(highest):
            break
        try:
            parent.rmdir()  # only if empty
        except OSError:
            break


@contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """Hold the lock for the block; a lock this process already holds stays held after it.
    A busy folder is a UserError here (inside a task: Hydra's job machinery reports it)."""
    try:
        taken = acquire(run_dir)
    except RunFolderBusy as busy:
        raise UserError(str(busy)) from None
    try:
        yield
    finally:
        if taken:
            release(run_dir)

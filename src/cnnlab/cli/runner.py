"""The one place that turns errors into exit codes: user and config mistakes end as
`error: <one line>` and exit 1; bugs keep their traceback."""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import (
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
    SearchPathException,
)
from hydra.types import RunMode
from omegaconf.errors import OmegaConfBaseException

from cnnlab.core import run_lock
from cnnlab.core.errors import (
    LOST_RANK,
    NO_SLURM,
    CannotWrite,
    RefusedAtStart,
    RunFolderBusy,
    RunInterrupted,
    UserError,
    message,
)
from cnnlab.core.moved_keys import moved

T = TypeVar("T")
# Hydra plugins that ship as cnnlab extras: the config group their option lives in → the extra.
EXTRAS = {
    "hydra/sweeper/optuna": "sweeps",
    "hydra/launcher/submitit_local": "slurm",
    "hydra/launcher/submitit_slurm": "slurm",
}


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def missing_extra(err: BaseException) -> str | None:
    """The pip command that installs a missing plugin, when a config option needs one."""
    text = str(err)
    for option, extra in EXTRAS.items():
        if f"'{option}'" in text:
            return (
                f"{option.rpartition('/')[2]} is not installed: pip install 'cnnlab[{extra}]' "
                f"(or 'cnnlab[all]'; make install has every extra)"
            )
    return None


WRITABLE = "choose a writable folder (paths.log_dir=… for runs, CNNLAB_DATA=… for data)"
FULL = "free some space, or write elsewhere (paths.log_dir=…)"
MACHINE = {errno.EROFS: WRITABLE, errno.EACCES: WRITABLE, errno.EPERM: WRITABLE,
           errno.ENOSPC: FULL, errno.EDQUOT: FULL}  # fmt: skip


def machine_failure(err: OSError) -> str | None:
    """One line for the machine's own failures (read-only or full disk, no permission)."""
    if err.errno not in MACHINE:
        return None
    return f"cannot write {err.filename or 'a file'}: {err.strerror}; {MACHINE[err.errno]}"


PEER_LOST = ("Connection reset by peer", "Connection closed by peer")


def runtime_failure(err: RuntimeError) -> str | None:
    """One line for runtime errors that are the machine's or the cluster's, not a bug."""
    text = str(err)
    if 'Could not detect "srun"' in text:  # submitit: launcher=slurm off a cluster
        return NO_SLURM
    if any(p in text for p in PEER_LOST):  # gloo/NCCL: another rank died (killed, OOM, crash)
        return LOST_RANK
    return None


def describe(err: BaseException) -> str:
    """One line for a config error that Hydra or OmegaConf would print over several."""
    extra = missing_extra(err)
    if extra:
        return extra
    if isinstance(err, MissingConfigException) and err.options:
        options = sorted(o for o in err.options if not o.startswith("_"))  # _base: not an option
        return f"{_first_line(err)}; valid options: {', '.join(options)}"
    text = _first_line(err)
    overridden = re.match(r"Could not override '([\w.]+)'", text)
    if overridden and (new := moved(overridden.group(1))):
        return f"{overridden.group(1)} moved to {new}; set that instead"
    cause = err.__cause__
    if cause is not None and isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        detail = _first_line(cause)
        text = f"{text} {key}: {detail}" if key and key not in detail else f"{text} {detail}"
    return text


def one_line(err: BaseException) -> str | None:
    """The `error:` line for a user, config or machine failure; None for a bug (its traceback
    is the report)."""
    if isinstance(err, UserError | RunFolderBusy | RefusedAtStart):
        return message(err)
    if isinstance(err, CannotWrite):
        return machine_failure(err.error) or f"cannot write: {err.error}"
    if isinstance(err, CONFIG_ERRORS):
        return describe(err)
    if isinstance(err, OSError):
        return machine_failure(err)
    if isinstance(err, RuntimeError):
        return runtime_failure(err)
    return None


# What `one_line` may describe: every Exception, and the BaseExceptions raised where Hydra's
# callbacks run (so Hydra does not turn them into warnings).
FAILURES = (Exception, RunFolderBusy, RefusedAtStart, CannotWrite)
CONFIG_ERRORS = (
    MissingConfigException,
    ConfigCompositionException,
    OverrideParseException,
    SearchPathException,  # --config-dir names a missing folder
    OmegaConfBaseException,
)


def run_cli(hydra_main: Callable[[], object]) -> None:
    """Run a @hydra.main function; user and config errors end as `error: <one line>`, exit 1.

    Hydra prints config errors over ten lines (search path, hints); HYDRA_FULL_ERROR makes it
    raise them instead, so they can be reported in one. Bugs still show their full traceback.
    """
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    # A user project's `_target_: mypkg.MyNet` imports from the folder the command runs in, for
    # console scripts (`cnnlab-train`) as for `python -m cnnlab.commands.train`.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        hydra_main()
    except RunInterrupted as stop:
        logging.getLogger("cnnlab").error("%s", stop)
        sys.exit(stop.exit_code)
    except FAILURES as err:
        line = one_line(err)
        if line is None:
            raise
        _fail(line)
    finally:
        run_lock.release_all()  # a process that goes on (tests, a notebook) must not keep them


def in_job(task: Callable[..., T], fail: Callable[[str], None] | None = None) -> Callable[..., T]:
    """Wrap a Hydra task: a UserError is written to the job's log (train.log) and stderr.

    A single run then exits 1 quietly (`fail`: the Python API raises the line as a UserError
    instead); in a multirun the error is re-raised so Hydra records the job as failed and the
    sweep goes on to report it.
    """
    fail = fail or _fail

    @functools.wraps(task)
    def wrapper(*args, **kwargs):
        fresh = _fresh_run_dir()
        try:
            return task(*args, **kwargs)
        except RunInterrupted as stop:
            _log_to_files(str(stop))  # the sweep report reads it: status `interrupted`
            if _in_multirun():
                from cnnlab.analysis.sweep_report import write  # the sweep stops: report now

                write(Path(HydraConfig.get().sweep.dir))
            raise
        except UserError as err:
            _log_to_files(message(err))
            if _in_multirun():
                raise
            if fresh is not None and not err.trained:
                run_lock.remove_created(fresh)  # refused before training: no run folder
            fail(message(err))
        except (ImportError, RuntimeError) as err:
            line = broken_install(err)
            if line is None or _in_multirun():
                raise
            _log_to_files(line)
            if fresh is not None:
                run_lock.remove_created(fresh)  # nothing ran: no run folder
            fail(line)
        except OSError as err:  # the machine's: a full disk, a read-only folder
            line = machine_failure(err)
            if line is None or _in_multirun():
                raise
            if fresh is not None:  # a folder holding only what its start wrote goes
                run_lock.remove_created(fresh, keep_results=True)
            if fresh is None or fresh.is_dir():
                _log_to_files(line)
            fail(line)

    return wrapper


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _fresh_run_dir() -> Path | None:
    """This run's folder, if this process made it (under its lock: `cli.run_guard`): the only
    folder a refusal may remove. A pinned run_id's existing folder is never removed."""
    if not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.MULTIRUN:
        return None
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    return run_dir if run_lock.created_here(run_dir) else None


def broken_install(err: BaseException) -> str | None:
    """One line for the commonest broken install: a torchvision built for another torch (pip
    upgraded one of the pair), which fails on import, inside torchvision, with messages such as
    `operator torchvision::nms does not exist`. None for anything else."""
    import traceback
    from importlib.metadata import PackageNotFoundError, version

    frames = [f.filename for f in traceback.extract_tb(err.__traceback__)]
    importing = any(f.endswith(os.path.join("torchvision", "__init__.py")) for f in frames)
    missing_op = "torchvision::" in str(err) and "does not exist" in str(err)
    inside = any(f"{os.sep}torchvision{os.sep}" in f for f in frames)
    # Only a failure to load torchvision: an error a transform raises while running is the
    # user's input, reported as it is.
    if not (importing or missing_op or (isinstance(err, ImportError) and inside)):
        return None
    try:
        pair = f"torch {version('torch')}, torchvision {version('torchvision')}"
    except PackageNotFoundError:
        pair = "torchvision is not installed"
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return (f"torchvision cannot be loaded ({first}; {pair}): torch and torchvision must be a "
            f"matching pair, e.g. pip install --upgrade torch torchvision")  # fmt: skip


def say(line: str) -> None:
    """A command's result line: printed as it is, and kept in the run's log file (predict.log)."""
    print(line, flush=True)
    _log_to_files(line, logging.INFO)


def _log_to_files(err: str, level: int = logging.ERROR) -> None:
    # The run folder's log records why the run stopped; the console gets the one `error:` line.
    # A log file that cannot be written (the full disk that stopped the run) is passed over
    # quietly instead of printing logging's own traceback.
    record = logging.LogRecord("cnnlab", level, __file__, 0, "%s", (err,), None)
    quiet, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)
    finally:
        logging.raiseExceptions = quiet


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)

"""One exception type for mistakes a user can fix, and the one place that reports them."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from hydra.types import RunMode
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


class UserError(Exception):
    """A bad value, file or setup that the user can fix; reported as one line, exit 1."""


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def message(err: UserError) -> str:
    """The error's own line, also when a DataLoader worker raised it: PyTorch re-raises it in the
    main process as "Caught UserError in DataLoader worker process 0. Original Traceback …"."""
    text = str(err)
    if text.startswith("Caught ") and "Original Traceback" in text:
        return text.strip().splitlines()[-1].split(": ", 1)[-1]
    return text


def describe(err: BaseException) -> str:
    """One line for a config error that Hydra or OmegaConf would print over several."""
    if isinstance(err, MissingConfigException) and err.options:
        return f"{_first_line(err)}; valid options: {', '.join(sorted(err.options))}"
    text = _first_line(err)
    cause = err.__cause__
    if cause is not None and isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        detail = _first_line(cause)
        text = f"{text} {key}: {detail}" if key and key not in detail else f"{text} {detail}"
    return text


def run_cli(hydra_main: Callable[[], object]) -> None:
    """Run a @hydra.main function; user and config errors end as `error: <one line>`, exit 1.

    Hydra prints config errors over ten lines (search path, hints); HYDRA_FULL_ERROR makes it
    raise them instead, so they can be reported in one. Bugs still show their full traceback.
    """
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        hydra_main()
    except UserError as err:
        _fail(message(err))
    except (
        MissingConfigException,
        ConfigCompositionException,
        OverrideParseException,
        OmegaConfBaseException,
    ) as err:
        _fail(describe(err))


def in_job(task: Callable[..., T]) -> Callable[..., T]:
    """Wrap a Hydra task: a UserError is written to the job's log (train.log) and stderr.

    A single run then exits 1 quietly; in a multirun the error is re-raised so Hydra records the
    job as failed and the sweep goes on to report it.
    """

    @functools.wraps(task)
    def wrapper(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        except UserError as err:
            _log_to_files(message(err))
            if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
                raise
            _fail(message(err))

    return wrapper


def _log_to_files(err: str) -> None:
    # The run folder's log records why the run stopped; the console gets the one `error:` line.
    record = logging.LogRecord("cnnlab", logging.ERROR, __file__, 0, "%s", (err,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)

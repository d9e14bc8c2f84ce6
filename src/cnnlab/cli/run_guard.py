"""The run folder's lock, taken before Hydra writes into the folder.

Hydra saves `<run>/.hydra/*.yaml` and opens the job's log file before the task function runs
(`hydra.core.utils.run_job`); its `on_run_start` / `on_multirun_start` callbacks run before
that. A second start of a pinned `run_id` is refused here, in about a second and before torch is
imported, without a byte written into the live run's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from cnnlab.core import run_lock
from cnnlab.core.errors import CannotWrite, RefusedAtStart

# Lightning's own order for a process's global rank (lightning_fabric's `_get_rank`), read here
# without importing it (it imports torch).
RANK_VARS = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def process_rank() -> int:
    for var in RANK_VARS:
        if var in os.environ:
            return int(os.environ[var])
    return 0


class RunFolderGuard(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # output_subdir null: a DDP rank > 0 re-running the command, or a command that prints
        # only (summary); neither owns a run folder.
        if config.hydra.output_subdir is None or process_rank() != 0:
            return
        _acquire(_folder(config, "hydra.run.dir"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The sweep folder (multirun.yaml, the report): each job's own folder is locked by the
        # job when it trains.
        if process_rank() == 0:
            _acquire(_folder(config, "hydra.sweep.dir"))


def _folder(config: DictConfig, key: str) -> Path:
    """The folder `key` names; a value it is built from that is refused (`run_id=../x`, by
    `cli.resolvers.run_subdir`) is one line, not Hydra's warning and traceback."""
    try:
        return Path(str(OmegaConf.select(config, key, throw_on_missing=True)))
    except InterpolationResolutionError as err:
        line = str(err).splitlines()[0]  # "ValueError raised while resolving …: <the cause>"
        raise RefusedAtStart(line.split("while resolving interpolation: ", 1)[-1]) from None


def _acquire(folder: Path) -> None:
    try:
        run_lock.acquire(folder)
    except OSError as err:  # Hydra would turn it into a warning, then fail on its own mkdir
        raise CannotWrite(err) from None

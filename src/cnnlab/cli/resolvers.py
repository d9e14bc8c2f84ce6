"""OmegaConf resolvers the configs use. Imported by every entry point before Hydra composes."""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from cnnlab.cli import machine

# One id per process (per API call): every job of a sweep and every run started in the same
# second differ.
_PROCESS_ID = secrets.token_hex(3)
_STARTED = datetime.now()


def new_run() -> None:
    """A new date, time and id for the next run folder: each `cnnlab.train` call in one process
    (a notebook) gets its own folder, as each command line does."""
    global _PROCESS_ID, _STARTED
    _PROCESS_ID, _STARTED = secrets.token_hex(3), datetime.now()


def run_subdir(run_id: str | None) -> str:
    """`<date>/<time>_<id>`, or `runs/<run_id>` when the user pins the run folder."""
    if run_id:
        if "/" in str(run_id) or str(run_id).startswith("."):
            raise ValueError(
                f"run_id={run_id!r} must be a plain folder name (no '/', no leading '.')"
            )
        return f"runs/{run_id}"
    return f"{_STARTED:%Y-%m-%d}/{_STARTED:%H-%M-%S}_{_PROCESS_ID}"


def cpu_workers() -> int:
    """DataLoader workers for decoding files: the cores this process may use, minus one for the
    training loop, at most 8 (more rarely helps and costs memory)."""
    return max(0, min(8, machine.cpu_cores() - 1))


def repeat(value: float, times: int) -> list[float]:
    """`${cnnlab.repeat:0.5,${data.in_channels}}` → [0.5, 0.5, 0.5] for per-channel statistics."""
    return [value] * int(times)


def run_name(output_dir: str) -> str:
    """A run's name in MLflow / W&B: its folder's id (`17-16-27_c19aab`), or `<sweep>/<job>` for
    a job of a multirun (`17-16-27_c19aab/3`)."""
    path = Path(str(output_dir))
    return f"{path.parent.name}/{path.name}" if path.name.isdigit() else path.name


def sweep_name(output_dir: str) -> str | None:
    """The sweep a multirun job belongs to (its folder's parent), None for a single run: MLflow's
    `sweep` tag and W&B's group."""
    path = Path(str(output_dir))
    return path.parent.name if path.name.isdigit() else None


LOWER_IS_BETTER = ("loss", "nll", "ece", "error")


def metric_mode(metric: str, mode: str = "auto") -> str:
    """`min` for losses and errors, `max` for accuracies and scores, unless set (`min`/`max`)."""
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"metric mode {mode!r} is not valid; choose one of: auto, min, max")
    return "min" if any(word in str(metric) for word in LOWER_IS_BETTER) else "max"


def register() -> None:
    # `cnnlab.cwd` instead of `hydra:runtime.cwd`: the sweep folder is resolved before Hydra's
    # runtime config exists, and Hydra does not change the working directory here (chdir: false).
    for name, fn in {
        "cnnlab.run_subdir": run_subdir,
        "cnnlab.cpu_workers": cpu_workers,
        "cnnlab.repeat": repeat,
        "cnnlab.metric_mode": metric_mode,
        "cnnlab.run_name": run_name,
        "cnnlab.sweep_name": sweep_name,
        "cnnlab.cwd": os.getcwd,
    }.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=name == "cnnlab.run_subdir")


register()

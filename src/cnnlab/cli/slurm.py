"""`launcher=slurm` where it cannot run, refused before Hydra starts (so no sweep folder, lock or
job list is left): it launches the jobs of a sweep, so a single `make train` would silently run
here instead, and off a cluster submitit would fail only after the sweep folder was written."""

from __future__ import annotations

import shutil

from cnnlab.core.errors import NO_SLURM, UserError

MULTIRUN = ("-m", "--multirun")


def refuse_unrunnable(argv: list[str]) -> None:
    if not any(arg in ("launcher=slurm", "+launcher=slurm") for arg in argv):
        return
    if not any(arg in MULTIRUN for arg in argv):
        raise UserError(
            'launcher=slurm submits the jobs of a sweep: run it as make sweep ARGS="launcher=slurm '
            '…" (cnnlab-train --multirun …); a single run with it would run on this machine'
        )
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise UserError(NO_SLURM)

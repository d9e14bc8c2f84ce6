"""Train a classifier: `cnnlab-train model=mlp optimizer=sgd trainer.max_epochs=3`.

`train(cfg)` is a plain function (tests and sweeps call it); `main` is the thin Hydra wrapper.
Nothing here imports torch or Lightning: the config is checked first, so a mistake is answered
in about a second; `cnnlab.training.fit` does the work.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from omegaconf import DictConfig

from cnnlab.cli import ddp_sweep, resolvers, slurm  # noqa: F401 - resolvers must exist before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli, say
from cnnlab.cli.schema import validate
from cnnlab.core import checkpoint
from cnnlab.core.errors import UserError

log = logging.getLogger(__name__)


def train(cfg: DictConfig, verbose: bool = True) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit, then test the checkpoint `test_ckpt` names (`last` by default; `verbose`: print the
    test's table). Returns (metrics, objects built) or raises."""
    started = time.perf_counter()
    validate(cfg)  # also when called from Python, before torch and Lightning are imported
    from cnnlab.training import fit

    return fit.run(cfg, started, verbose)


def where_it_went(run_dir: str) -> str:
    """The line a run ends with: where it is, and the checkpoint the next command takes."""
    kept = [f"{checkpoint.CHECKPOINTS}/{checkpoint.BEST}", f"{checkpoint.CHECKPOINTS}/"
            f"{checkpoint.LAST}", checkpoint.METRICS]  # fmt: skip
    best = checkpoint.in_run(run_dir, checkpoint.BEST)
    return f'run folder: {run_dir} ({", ".join(kept)}); next: make eval ARGS="ckpt_path={best}"'


@command("train")
def _main(cfg: DictConfig) -> float | None:
    with ddp_sweep.job_scope():
        metrics, _ = train(cfg)
    log.info("final metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    if os.environ.get("LOCAL_RANK", "0") == "0":  # DDP: rank 0 says it once
        say(where_it_went(cfg.paths.output_dir))
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        raise UserError(
            f"optimized_metric={name!r} was not logged; logged: {', '.join(sorted(metrics))}"
        )
    return metrics.get(name) if name else None


def _checked_main() -> float | None:
    slurm.refuse_unrunnable(sys.argv[1:])  # before Hydra writes a sweep folder
    return _main()


def main() -> None:
    job_argv = ddp_sweep.child_argv()  # a DDP rank > 0 of one sweep job runs just that job
    if job_argv is not None:
        sys.argv = [sys.argv[0], *job_argv]
    run_cli(_checked_main)


if __name__ == "__main__":
    main()

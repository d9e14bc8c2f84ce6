"""Train a classifier: `cnnlab-train model=mlp optimizer=sgd trainer.max_epochs=3`.

`train(cfg)` is a plain function (tests and sweeps call it); `main` is the thin Hydra wrapper.
Nothing here imports torch or Lightning: the config is checked first, so a mistake is answered
in about a second; `cnnlab.training.fit` does the work.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from omegaconf import DictConfig

from cnnlab.cli import ddp_sweep, resolvers  # noqa: F401 - resolvers must exist before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.cli.schema import validate
from cnnlab.core.errors import UserError

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit, then test the best checkpoint. Returns (metrics, objects built) or raises."""
    started = time.perf_counter()
    validate(cfg)  # also when called from Python, before torch and Lightning are imported
    from cnnlab.training import fit

    return fit.run(cfg, started)


@command("train")
def _main(cfg: DictConfig) -> float | None:
    with ddp_sweep.job_scope():
        metrics, _ = train(cfg)
    log.info("final metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        raise UserError(
            f"optimized_metric={name!r} was not logged; logged: {', '.join(sorted(metrics))}"
        )
    return metrics.get(name) if name else None


def main() -> None:
    job_argv = ddp_sweep.child_argv()  # a DDP rank > 0 of one sweep job runs just that job
    if job_argv is not None:
        sys.argv = [sys.argv[0], *job_argv]
    run_cli(_main)


if __name__ == "__main__":
    main()

"""Train a classifier: `python -m cnnlab.train model=mlp optimizer=sgd trainer.max_epochs=3`.

`train(cfg)` is a plain function (tests and sweeps call it); `main` is the thin Hydra wrapper.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from cnnlab.cli import ddp_sweep, resolvers  # noqa: F401 - resolvers must exist before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.cli.schema import validate
from cnnlab.errors import RunInterrupted, UserError
from cnnlab.training import build, checkpoint

log = logging.getLogger(__name__)
CTRL_C = "interrupted (Ctrl-C): exiting 130; resume with ckpt_path=last"


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest of a run folder's last.ckpt, on_exception.ckpt and SLURM's hpc_ckpt_N.ckpt
    (Lightning saves that one on SIGUSR1 before requeueing the job)."""
    found = [
        p
        for p in (
            run_dir / "checkpoints" / "last.ckpt",
            run_dir / "checkpoints" / "on_exception.ckpt",
        )
        if p.is_file()
    ]
    found += list(run_dir.glob("hpc_ckpt_*.ckpt"))
    return max(found, key=lambda p: p.stat().st_mtime_ns, default=None)


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from: `ckpt_path`, `last` for this run folder's newest checkpoint,
    and that checkpoint too when the folder is pinned by `run_id` or SLURM requeued this job
    (SLURM_RESTART_COUNT > 0: submitit's sweep jobs keep their folder): the job continues."""
    run_dir = Path(cfg.paths.output_dir)
    wanted = cfg.get("ckpt_path")
    requeued = os.environ.get("SLURM_RESTART_COUNT", "0").strip() not in ("", "0")
    if wanted is None and (cfg.get("run_id") or requeued) and latest_checkpoint(run_dir):
        wanted = "last"
    if wanted == "last":
        newest = latest_checkpoint(run_dir)
        if newest is None:
            log.warning("ckpt_path=last: no checkpoint in %s yet; starting fresh", run_dir)
            return None
        return str(newest)
    return wanted


def check_resume(ckpt_path: str, model: L.LightningModule) -> None:
    """Refuse unsafe, truncated or foreign files in one line before fit starts, and say from
    where training continues (a mid-epoch checkpoint cannot be continued exactly)."""
    stored = checkpoint.load(ckpt_path)
    problems = checkpoint.mismatch(model.state_dict(), stored.get("state_dict", {}))
    if problems:
        raise UserError(f"ckpt_path={ckpt_path} does not fit this model ({problems})")
    progress = stored.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
    current = progress.get("current", {})
    if current.get("processed", 0) < current.get("started", 0):
        log.warning(
            "resuming from %s, saved mid-epoch (epoch %s, step %s): training continues from "
            "that step, but the rest of that epoch is not replayed exactly (a DataLoader "
            "cannot resume mid-epoch; the epoch may end a batch early), so the result will "
            "differ from an uninterrupted run",
            ckpt_path,
            stored.get("epoch"),
            stored.get("global_step"),
        )
    else:
        log.info("resuming from %s (saved after epoch %s)", ckpt_path, stored.get("epoch"))


def effective_batch(cfg: DictConfig, trainer: L.Trainer) -> int:
    """Images per optimizer step: data parallelism and accumulation multiply the batch."""
    return cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit, then test the best checkpoint. Returns (metrics, objects built)."""
    started = time.perf_counter()
    validate(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    prep, datamodule, net = build.data_and_network(cfg)
    strategy = build.freeze_strategy(cfg, net)
    model = build.classifier(cfg, net, strategy)
    callbacks = build.callbacks(cfg)
    if strategy is not None:
        callbacks.append(strategy)
    loggers = build.loggers(cfg)
    trainer = build.trainer(cfg, callbacks, loggers)
    _log_effective_batch(cfg, trainer)

    ckpt_path = resume_path(cfg)
    if ckpt_path:
        check_resume(ckpt_path, model)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:
        # Lightning has written the checkpoint (and would exit 0 here, Lightning 2.6): 128 + 15.
        raise RunInterrupted("SIGTERM: checkpoint saved; exiting 143", 143) from None
    except SystemExit:  # after SIGTERMException, which subclasses it
        if trainer.interrupted:  # Ctrl-C: Lightning shuts down and exits 1; report 128 + 2
            raise RunInterrupted(CTRL_C, 130) from None
        raise
    if trainer.interrupted:  # Lightning versions that return instead of exiting
        raise RunInterrupted(CTRL_C, 130)
    metrics = _metrics(trainer)
    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("no best checkpoint saved; testing the weights at the end of training")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(_metrics(trainer))
    for logger in trainer.loggers:
        logger.finalize("success")
        if hasattr(logger, "close"):  # RunTensorBoardLogger: one events file for fit and test
            logger.close()
    _write_metrics(cfg, trainer, model, metrics, time.perf_counter() - started)
    return metrics, {"trainer": trainer, "model": model, "datamodule": datamodule}


def _log_effective_batch(cfg: DictConfig, trainer: L.Trainer) -> None:
    """Data parallelism multiplies the batch per optimizer step; the learning rate stays as set."""
    per_step = effective_batch(cfg, trainer)
    if trainer.global_rank == 0 and per_step != cfg.data.batch_size:
        log.info(
            "effective batch %d images per optimizer step = data.batch_size %d × %d processes × "
            "accumulate_grad_batches %d; optimizer.lr=%g is used as set (not scaled; for the "
            "linear scaling rule multiply it by %g yourself)",
            per_step,
            cfg.data.batch_size,
            trainer.world_size,
            trainer.accumulate_grad_batches,
            cfg.optimizer.lr,
            per_step / cfg.data.batch_size,
        )


def _write_metrics(cfg, trainer, model, metrics: dict[str, float], wall_s: float) -> None:
    """metrics.json in the run folder: what sweep reports read (absent = the run failed)."""
    if trainer.global_rank != 0 or not cfg.paths.get("output_dir"):
        return
    record = {
        **metrics,
        "params": sum(p.numel() for p in model.parameters()),
        "best_epoch": model.best_epoch,
        "epochs": trainer.current_epoch,
        "effective_batch_size": effective_batch(cfg, trainer),
        "wall_s": round(wall_s, 1),
    }
    out = Path(cfg.paths.output_dir) / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))


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

"""One training run, once its config is valid: build, fit (resuming when asked), test the
checkpoint `test_ckpt` names (conf/train.yaml), write metrics.json. Imports torch and Lightning;
the train command reaches it only after the config has been checked, so a typo is answered
without that start-up."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from cnnlab.core import checkpoint, run_lock, targets
from cnnlab.core.errors import CTRL_C, SIGTERM_SAVED, RunInterrupted, UserError
from cnnlab.training import (
    build,
    cached_probe,
    calibration,
    eval_pass,
    feature_fit,
    loggers,
    resume,
)

log = logging.getLogger(__name__)
# Lightning's own pytree helper still checks `isinstance(…, LeafSpec)`, which torch deprecated:
# a FutureWarning at every run that no setting of the user's can change.
LEAFSPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
warnings.filterwarnings("ignore", LEAFSPEC, FutureWarning, r"lightning\.")


def run(
    cfg: DictConfig, started: float, verbose: bool = True
) -> tuple[dict[str, float], dict[str, Any]]:
    """`fit_and_test` holding the run folder's lock (rank 0: DDP's other ranks share their run's
    folder and write nothing of their own there)."""
    if rank_zero_only.rank != 0:
        return fit_and_test(cfg, started, verbose)
    with run_lock.exclusive(Path(cfg.paths.output_dir)):
        return fit_and_test(cfg, started, verbose)


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


RESUMED_FOLDER = r"Checkpoint directory .* exists and is not empty"


def effective_batch(cfg: DictConfig, trainer: L.Trainer) -> int:
    """Images per optimizer step: data parallelism and accumulation multiply the batch."""
    return cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches


def fit_and_test(
    cfg: DictConfig, started: float, verbose: bool = True
) -> tuple[dict[str, float], dict[str, Any]]:
    ckpt_path = resume.resume_path(cfg)
    stored = checkpoint.load(ckpt_path) if ckpt_path else None
    # A file is data: a builder that is neither cnnlab's nor named on this command line (a
    # callback added with +callbacks.x._target_=…) is refused before anything else.
    trained_with = checkpoint.stored_config(
        stored, ckpt_path, also=targets.named_in(build.plain(cfg))
    )
    if cfg.optimizer.get("lr") == "auto":
        _choose_lr(cfg, trained_with)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    _, datamodule, net = build.data_and_network(cfg)
    strategy = build.freeze_strategy(cfg, net)
    model = build.classifier(cfg, net, strategy)
    if stored is not None:  # before any logger or callback writes into the run folder
        resume.check(ckpt_path, stored, trained_with, model.state_dict(), build.plain(cfg))
        finished = resume.finished_metrics(ckpt_path, stored, trained_with, cfg)
        if finished is not None:
            return finished, {}
    kind = (cfg.get("classifier") or {}).get("kind")
    if kind in feature_fit.FITTED:  # classifier=knn | logistic: no epochs, one fit on features
        return feature_fit.run(cfg, datamodule, net, verbose)
    images, datamodule = datamodule, cached_probe.use(cfg, model, datamodule, strategy)
    callbacks = build.callbacks(cfg)
    if strategy is not None:
        callbacks.append(strategy)
    named = build.loggers(cfg, resume=checkpoint.tracking_runs(stored))
    callbacks.append(loggers.TrackingRuns(named))
    trainer = build.trainer(cfg, callbacks, list(named.values()))
    _log_effective_batch(cfg, trainer)
    try:
        with warnings.catch_warnings():
            if ckpt_path:  # a resume writes into its own run folder: the warning is noise
                warnings.filterwarnings("ignore", message=RESUMED_FOLDER)
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except UserError as err:
        err.trained = trainer.global_step > 0  # else the run folder holds nothing worth keeping
        raise
    except SIGTERMException:
        # Lightning has written the checkpoint (and would exit 0 here, Lightning 2.6): 128 + 15.
        raise RunInterrupted(SIGTERM_SAVED, 143) from None
    except SystemExit:  # after SIGTERMException, which subclasses it
        if trainer.interrupted:  # Ctrl-C: Lightning shuts down and exits 1; report 128 + 2
            raise RunInterrupted(CTRL_C, 130) from None
        raise
    if trainer.interrupted:  # Lightning versions that return instead of exiting
        raise RunInterrupted(CTRL_C, 130)
    if stored is not None and resume.test_unfinished(stored, cfg):
        # The fit above restored a finished run and trained nothing: its last epoch's validation
        # numbers (and the running best) come from one validation pass, then the test as usual.
        model.resume_best()
        trainer.validate(model, datamodule=datamodule)
    metrics, tested = _metrics(trainer), None
    if cfg.get("test"):
        tested = tested_checkpoint(cfg, trainer)
        if tested:
            # Exactly the weights `eval` reads from that checkpoint. Through ckpt_path, Lightning's
            # weight-averaging callbacks would put the raw weights back (EMA keeps the average in
            # state_dict and the raw ones beside it), and the printed test would not be eval's.
            checkpoint.load_state(model, checkpoint.module_state(checkpoint.load(tested)), tested)
        trainer.test(model, datamodule=datamodule, verbose=verbose)  # verbose: the results table
        metrics.update(_metrics(trainer))
        if cfg.get("eval_report", True) and trainer.global_rank == 0:
            _report(cfg, trainer, model, images, tested)
    for logger in trainer.loggers:
        logger.finalize("success")
        if hasattr(logger, "close"):  # RunTensorBoardLogger: one events file for fit and test
            logger.close()
    _write_metrics(cfg, trainer, model, metrics, time.perf_counter() - started, tested)
    return metrics, {"trainer": trainer, "model": model, "datamodule": images}


def tested_checkpoint(cfg: DictConfig, trainer: L.Trainer) -> str:
    """The checkpoint `test` evaluates: `test_ckpt=best` (the monitored metric's best epoch) or
    `last` (the weights training ended with; best when early stopping ended it, since the
    epochs after the best are the patience). "" tests the weights in memory."""
    callback = trainer.checkpoint_callback
    stopped_early = any(
        isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks
    )
    which = "best" if stopped_early else cfg.test_ckpt
    path = ""
    if callback is not None:
        path = callback.best_model_path if which == "best" else callback.last_model_path
    if not path or not Path(path).is_file():  # none saved, or deleted during training
        log.warning("no %s checkpoint %s; testing the weights at the end of training", which, path)
        return ""
    return path


def _choose_lr(cfg: DictConfig, trained_with: dict) -> None:
    """optimizer.lr=auto: the range test's suggestion (a resumed run keeps the rate it chose)."""
    from omegaconf import open_dict

    from cnnlab.training import lr_search

    before = trained_with.get("optimizer", {})
    if before.get("lr") not in (None, "auto"):
        chosen = float(before["lr"])
    else:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        chosen = lr_search.search(cfg.copy(), Path(cfg.paths.output_dir))
    with open_dict(cfg):
        cfg.optimizer.lr = chosen
    log.info("optimizer.lr=auto: %.3g (learning-rate range test, lr_find.png)", chosen)


def _report(cfg: DictConfig, trainer: L.Trainer, model, datamodule, tested: str) -> None:
    """The tested checkpoint's evaluation report; with `calibrate`, its temperature is fitted on
    the validation split and stored in that checkpoint (what predict and export read)."""
    calibrate = bool(cfg.get("calibrate")) and bool(tested)
    report = eval_pass.report(
        model.net, datamodule, "test", Path(cfg.paths.output_dir) / "eval",
        calibrate=calibrate, loggers=trainer.loggers, step=trainer.global_step,
    )  # fmt: skip
    if calibrate:
        calibration.store(Path(tested), report["temperature"], fitted_on="val")


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


def _train_images(trainer: L.Trainer) -> int | None:
    train_set = getattr(trainer.datamodule, "train_set", None)
    return len(train_set) if hasattr(train_set, "__len__") else None


def _write_metrics(cfg, trainer, model, metrics: dict[str, float], wall_s: float, tested) -> None:
    """metrics.json in the run folder: what sweep reports read (absent = the run failed)."""
    if trainer.global_rank != 0 or not cfg.paths.get("output_dir"):
        return
    record = {
        **metrics,
        "params": sum(p.numel() for p in model.parameters()),
        "best_epoch": model.best_epoch,
        "epochs": trainer.current_epoch,
        "effective_batch_size": effective_batch(cfg, trainer),
        "train_images": _train_images(trainer),
        "wall_s": round(wall_s, 1),
        # The checkpoint the test/ metrics come from ("" the weights in memory; None: no test).
        "tested_ckpt": Path(tested).name if tested else tested,
    }
    checkpoint.write_metrics(cfg.paths.output_dir, record)

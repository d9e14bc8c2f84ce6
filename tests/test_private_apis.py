"""Every private API cnnlab still uses, in one list, each checked against the installed version:
where a public API exists cnnlab uses it; these have none. A failure here names the hook a new
Lightning / Hydra / TensorBoard / torch release changed, before a run trips on it (and is why
pyproject.toml pins lightning below the next minor)."""

from __future__ import annotations

import inspect

import pytest
import torch
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.weight_averaging import WeightAveraging
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger
from lightning.pytorch.loops.fit_loop import _FitLoop
from lightning.pytorch.strategies.launchers import subprocess_script as ddp_launcher
from lightning.pytorch.trainer.connectors.logger_connector.logger_connector import (
    _LoggerConnector,
)
from torch.utils.tensorboard import SummaryWriter

# (owner, attribute, cnnlab's use of it)
PRIVATE = [
    (ModelCheckpoint, "_should_skip_saving_checkpoint",
     "callbacks/run_checkpoint.py: last.ckpt after every epoch"),
    (ModelCheckpoint, "_save_last_checkpoint", "callbacks/run_checkpoint.py"),
    (ModelCheckpoint, "_monitor_candidates", "callbacks/run_checkpoint.py"),
    (ModelCheckpoint, "_should_save_on_train_epoch_end", "callbacks/run_checkpoint.py"),
    (_LoggerConnector, "should_update_logs",
     "callbacks/nonfinite.py: reads the step's health only on steps that log"),
    (_FitLoop, "_load_combined_loader_states",
     "callbacks/rng_state.py: the sampler's position restored before the RNG state"),
    (SummaryWriter, "_get_file_writer",
     "callbacks/hparams.py: the HPARAMS session without placeholder points on the curves"),
    (BasicSweeper, "split_arguments",
     "analysis/sweep_report.py: the jobs a basic sweep will run (hydra._internal)"),
    (ddp_launcher, "_launch_process_observer",
     "training/rank_watch.py: a lost DDP rank ends rank 0 with one line, exit 1"),
    (_ChildProcessObserver, "_terminate_all", "training/rank_watch.py"),
    (torch, "_foreach_norm", "callbacks/nonfinite.py: per-tensor norms kept for the report"),
]  # fmt: skip
# Attributes set in __init__ (not on the class): checked on an instance.
INSTANCE = [
    ("_run_id", "training/loggers.py: continue an MLflow run"),
    ("_initialized", "training/loggers.py"),
    ("_mlflow_client", "training/loggers.py"),
    ("_tracking_uri", "training/loggers.py"),
]


@pytest.mark.parametrize(("owner", "name", "where"), PRIVATE, ids=[p[1] for p in PRIVATE])
def test_private_api_still_exists(owner, name, where):
    assert hasattr(owner, name), f"{owner.__name__}.{name} is gone; used by {where}"


@pytest.mark.parametrize(("name", "where"), INSTANCE, ids=[i[0] for i in INSTANCE])
def test_mlflow_logger_private_attributes(name, where, tmp_path):
    pytest.importorskip("mlflow")
    logger = MLFlowLogger(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert hasattr(logger, name), f"MLFlowLogger.{name} is gone; used by {where}"


def test_private_hooks_keep_the_signatures_cnnlab_calls(tmp_path):
    assert list(inspect.signature(ModelCheckpoint._save_last_checkpoint).parameters) == [
        "self", "trainer", "monitor_candidates"]  # fmt: skip
    assert list(inspect.signature(ModelCheckpoint._monitor_candidates).parameters) == [
        "self", "trainer"]  # fmt: skip
    assert isinstance(inspect.getattr_static(_LoggerConnector, "should_update_logs"), property)
    assert hasattr(Trainer, "_logger_connector") or "_logger_connector" in str(
        inspect.getsource(Trainer.__init__)
    )
    assert hasattr(TensorBoardLogger(save_dir=tmp_path), "_experiment")
    assert hasattr(WeightAveraging, "__init__") and "_average_model" in inspect.getsource(
        WeightAveraging
    )

"""MLflow and W&B continue one tracking run across a kill -9 and resume: every epoch the checkpoint
holds is in the store exactly once, the run ends FINISHED, `epoch` is logged once per step."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from cnnlab.core.checkpoint import TRACKING_RUNS
from cnnlab.training import build


@pytest.mark.slow
def test_mlflow_after_kill_9_and_resume_is_one_finished_run_with_every_epoch_once(cli, tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        "train", "debug=test", "data=fake", "run_id=tracked", "trainer.max_epochs=6",
        "logger=mlflow", f"logger.mlflow.tracking_uri={uri}",
        f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}",
        "+callbacks.fault._target_=tests.faults.SignalAt", "+callbacks.fault.epoch=4",
        f"+callbacks.fault.once={tmp_path / 'fired'}",  # kill -9 once, after epoch 3 (0-based)
    ]  # fmt: skip
    killed = cli(*args)
    assert killed.returncode == -9, killed.stderr[-2000:]
    last = tmp_path / "outputs" / "train" / "runs" / "tracked" / "checkpoints" / "last.ckpt"
    stored = torch.load(last, weights_only=True)
    assert stored["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == 4
    resumed = cli(*args)  # the very same command resumes (the fault fires once)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert torch.load(last, weights_only=True)[TRACKING_RUNS] == {"mlflow": run.info.run_id}
    val_steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/acc")]
    assert len(val_steps) == 6 and len(set(val_steps)) == 6, val_steps  # each epoch once
    epochs = client.get_metric_history(run.info.run_id, "epoch")
    assert max(Counter(m.step for m in epochs).values()) == 1  # once per step
    assert sorted({int(m.value) for m in epochs}) == list(range(6))


def test_a_continued_mlflow_run_keeps_its_parameters_and_adds_only_new_ones(tmp_path):
    """MLflow refuses a parameter's second, different value: a continued run logs only the
    (flattened, as the logger names them) parameters the run does not have yet."""
    pytest.importorskip("mlflow")
    from cnnlab.training.loggers import RunMLFlowLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = RunMLFlowLogger(tracking_uri=uri, tags=None, synchronous=True)
    first.log_hyperparams({"optimizer": {"lr": 0.1}, "layers": [{"width": 8}], "seed": 1})
    again = RunMLFlowLogger(tracking_uri=uri, tags=None, synchronous=True, run_id=first.run_id)
    again.log_hyperparams({"optimizer": {"lr": 0.2}, "layers": [{"width": 16}], "seed": 1,
                           "ckpt_path": "last"})  # fmt: skip
    kept = again.experiment.get_run(first.run_id).data.params
    assert kept == {"optimizer/lr": "0.1", "layers/0/width": "8", "seed": "1", "ckpt_path": "last"}


def test_a_resumed_checkpoint_hands_each_logger_its_tracking_run(compose, tmp_path):
    uri = f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/m.db"
    cfg = compose("logger=[tensorboard,mlflow,wandb]", uri)
    named = build.loggers(cfg, resume={"mlflow": "abc123", "wandb": "w42", "tensorboard": "x"})
    assert named["mlflow"]._run_id == "abc123"
    assert named["wandb"]._wandb_init["id"] == "w42"
    assert named["wandb"]._wandb_init["resume"] == "allow"
    fresh = build.loggers(cfg)
    assert fresh["mlflow"]._run_id is None and fresh["wandb"]._wandb_init.get("id") is None

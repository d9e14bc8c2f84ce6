"""Training recipes as one override each: weight averaging (EMA, SWA), early stopping, the
learning-rate range test, any metric as the best checkpoint's monitor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.commands.train import train
from tests.test_reliability import BASE

EMA = "callbacks=[default,ema]"


def _ckpt(run: Path, name: str) -> dict:
    return torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_ema_weights_are_validated_checkpointed_and_loaded(compose, command, tmp_path):
    run = tmp_path / "ema"
    train(compose(*BASE, EMA, "trainer.max_epochs=2", f"paths.output_dir={run}"))
    best = _ckpt(run, "best.ckpt")
    raw, averaged = best["current_model_state"], best["state_dict"]
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw if k.startswith("net."))
    loaded = cnnlab.load(run / "checkpoints" / "best.ckpt").net.state_dict()
    assert all(torch.equal(loaded[k], averaged[f"net.{k}"]) for k in loaded)
    # The validation accuracy that chose best.ckpt is the averaged network's: eval agrees.
    record = json.loads((run / "metrics.json").read_text())
    proc = command("eval", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", "split=val",
                   "run_id=ev")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads((tmp_path / "outputs/eval/runs/ev/metrics.json").read_text())
    assert evaluated["val/acc"] == pytest.approx(record["val/acc_best"], abs=1e-6)


@pytest.mark.slow
def test_resume_with_ema_is_bit_exact(compose, tmp_path):
    full = compose(*BASE, EMA, "trainer.max_epochs=3", f"paths.output_dir={tmp_path / 'full'}")
    train(full)
    part = [*BASE, EMA, "run_id=r", f"paths.output_dir={tmp_path / 'part'}", "trainer.max_epochs=3"]
    stop = ["+callbacks.stop._target_=tests.faults.StopAfterEpoch", "+callbacks.stop.epoch=0"]
    train(compose(*part, *stop))
    train(compose(*part, *stop))  # epoch 0 is done: the stop does not fire again
    a, b = _ckpt(tmp_path / "full", "last.ckpt"), _ckpt(tmp_path / "part", "last.ckpt")
    for key in ("state_dict", "current_model_state", "averaging_state"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key


@pytest.mark.slow
def test_swa_and_early_stopping_compose_and_run(quick):
    metrics, objects = train(quick("callbacks=[default,swa,early_stopping]", "trainer.max_epochs=3",
                                   "callbacks.swa.swa_epoch_start=1",
                                   "callbacks.early_stopping.patience=1"))  # fmt: skip
    names = {type(c).__name__ for c in objects["trainer"].callbacks}
    assert {"StochasticWeightAveraging", "EarlyStopping"} <= names
    assert metrics["val/acc"] >= 0


@pytest.mark.slow
def test_early_stopping_stops_and_still_tests_the_best_checkpoint(quick):
    metrics, objects = train(
        quick("callbacks=[default,early_stopping]", "trainer.max_epochs=30", "test=true",
              "callbacks.early_stopping.patience=1", "optimizer.lr=1e-9", "scheduler=none")
    )  # fmt: skip
    assert objects["trainer"].current_epoch < 30  # a rate that learns nothing stops early
    assert "test/acc" in metrics
    # test_ckpt=last (the default) would test a patience epoch: early stopping tests the best.
    run = Path(objects["trainer"].default_root_dir)
    assert json.loads((run / "metrics.json").read_text())["tested_ckpt"] == "best.ckpt"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["last", "best"])
def test_test_ckpt_picks_the_checkpoint_the_test_metrics_come_from(quick, which):
    cfg = quick("trainer.max_epochs=3", "data.train_limit=640", "test=true", f"test_ckpt={which}",
                "callbacks.model_checkpoint.monitor=val/loss")  # fmt: skip
    metrics, objects = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert json.loads((run / "metrics.json").read_text())["tested_ckpt"] == f"{which}.ckpt"
    tested = cnnlab.load(run / "checkpoints" / f"{which}.ckpt")
    dm = objects["datamodule"]
    images, targets = dm.test_set.images, dm.test_set.targets
    acc = float((tested.predict(images).argmax(1) == targets).float().mean())
    assert metrics["test/acc"] == pytest.approx(acc, abs=1e-6)


@pytest.mark.slow
def test_lr_auto_runs_the_range_test_and_trains_with_its_suggestion(quick):
    cfg = quick("optimizer.lr=auto", "scheduler=none")
    metrics, _ = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "lr_find.png").stat().st_size > 10_000
    chosen = _ckpt(run, "last.ckpt")["hyper_parameters"]["config"]["optimizer"]["lr"]
    assert isinstance(chosen, float) and chosen != 1e-3
    assert metrics["lr-AdamW"] == pytest.approx(chosen)


def test_any_logged_metric_can_be_the_monitor_with_its_mode_inferred(compose):
    cfg = compose("callbacks.model_checkpoint.monitor=val/loss")
    assert cfg.callbacks.model_checkpoint.mode == "min"
    cfg = compose("callbacks.model_checkpoint.monitor=val/macro_f1", "optimized_metric=val/loss",
                  "callbacks=[default,early_stopping]")  # fmt: skip
    assert cfg.callbacks.model_checkpoint.mode == "max"
    assert cfg.callbacks.early_stopping.mode == "min"


@pytest.mark.slow
@pytest.mark.parametrize(
    "averaging", [(EMA,), ("callbacks=[default,swa]", "callbacks.swa.swa_epoch_start=1")]
)
def test_the_printed_test_is_what_eval_of_the_tested_checkpoint_gives(
    compose, command, tmp_path, averaging
):
    run = tmp_path / "avg"
    metrics, _ = train(compose(*BASE, *averaging, "trainer.max_epochs=3", "test=true",
                               "eval_report=false", f"paths.output_dir={run}"))  # fmt: skip
    tested = run / "checkpoints" / json.loads((run / "metrics.json").read_text())["tested_ckpt"]
    proc = command("eval", f"ckpt_path={tested}", "run_id=ev")
    assert proc.returncode == 0, proc.stderr[-2000:]
    evaluated = json.loads((tmp_path / "outputs/eval/runs/ev/metrics.json").read_text())
    assert evaluated["test/acc"] == metrics["test/acc"]
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], abs=1e-6)

"""The evaluation report (`eval/<split>/`, written by `eval` and by the test after training), its
numbers against scikit-learn, and temperature calibration end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import cnnlab
from cnnlab.analysis import eval_report, evaluation
from cnnlab.training.calibration import fit_temperature


def test_training_writes_every_report_file_and_the_figures_to_tensorboard(digits_run):
    report = digits_run / "eval" / "test"
    assert sorted(p.name for p in report.iterdir()) == sorted(eval_report.FILES)
    metrics = json.loads((report / "metrics.json").read_text())
    run = json.loads((digits_run / "metrics.json").read_text())
    assert metrics["top1"] == pytest.approx(run["test/acc"], abs=1e-6)  # Lightning's own number
    assert (
        metrics["images"] == 1000
        and sum(c["support"] for c in metrics["per_class"].values()) == 1000
    )
    for key in ("top5", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1"):
        assert 0 < metrics[key] <= 1
    assert metrics["nll"] > 0 and 0 <= metrics["ece"] < 1
    (events,) = (digits_run / "tb").glob("events.out.tfevents.*")
    tags = EventAccumulator(str(events)).Reload().Tags()
    assert {"eval_test/confusion_matrix", "eval_test/reliability", "eval_test/mistakes"} <= set(
        tags["images"]
    )


def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 4, generator=g) * 2
    targets = torch.randint(0, 4, (500,), generator=g)
    targets[:200] = logits[:200].argmax(1)  # better than chance
    out = evaluation.metrics(logits, targets, ["a", "b", "c", "d"])
    preds = logits.argmax(1)
    assert out["top1"] == pytest.approx(float((preds == targets).float().mean()), abs=1e-6)
    assert out["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(targets, preds), abs=1e-6
    )
    assert out["macro_f1"] == pytest.approx(f1_score(targets, preds, average="macro"), abs=1e-6)
    assert out["nll"] == pytest.approx(log_loss(targets, logits.double().softmax(1)), abs=1e-5)
    # ECE by hand: 15 equal bins, |accuracy - confidence| weighted by the bin's share.
    conf, hit = logits.softmax(1).max(1).values, (preds == targets).float()
    bins = (conf * 15).long().clamp(max=14)
    by_hand = sum(
        (bins == b).float().mean() * (hit[bins == b].mean() - conf[bins == b].mean()).abs()
        for b in range(15)
        if (bins == b).any()
    )
    assert out["ece"] == pytest.approx(float(by_hand), abs=1e-5)


def test_temperature_scaling_recovers_a_known_temperature():
    g = torch.Generator().manual_seed(1)
    true_logits = torch.randn(4000, 10, generator=g) * 3
    targets = torch.multinomial(true_logits.softmax(1), 1, generator=g).squeeze(1)
    assert fit_temperature(true_logits * 2.5, targets) == pytest.approx(2.5, rel=0.1)


@pytest.mark.slow
def test_calibrate_stores_the_temperature_that_predict_and_load_use(command, digits_run, tmp_path):
    ckpt = tmp_path / "best.ckpt"
    shutil.copy(digits_run / "checkpoints" / "best.ckpt", ckpt)
    proc = command("eval", f"ckpt_path={ckpt}", "calibrate=true", "run_id=cal")
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "outputs" / "eval" / "runs" / "cal" / "eval" / "test" / "metrics.json"
    metrics = json.loads(report.read_text())
    cal = metrics["calibration"]
    assert (
        cal["after"]["nll"] < cal["before"]["nll"] and metrics["temperature"] == cal["temperature"]
    )
    assert metrics["nll"] == pytest.approx(cal["after"]["nll"], abs=1e-5)
    model = cnnlab.load(ckpt)
    assert model.temperature == pytest.approx(cal["temperature"])
    assert cnnlab.load(digits_run / "checkpoints" / "best.ckpt").temperature == 1.0  # untouched
    digit = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    logits = model.net(model.preprocess(digit))
    expected = torch.softmax(logits / cal["temperature"], 1)
    assert torch.allclose(model.predict(digit), expected, atol=1e-6)


def test_a_failed_report_leaves_the_previous_one_whole(digits_run, tmp_path, monkeypatch):
    folder = tmp_path / "eval"
    shutil.copytree(digits_run / "eval", folder)
    before = (folder / "test" / "metrics.json").read_text()
    collected = evaluation.Collected(torch.randn(20, 10), torch.randint(0, 10, (20,)), [])

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(eval_report.eval_figures, "reliability_figure", broken)
    with pytest.raises(OSError):
        eval_report.write(folder, "test", collected, [str(i) for i in range(10)], lambda x: x)
    assert (folder / "test" / "metrics.json").read_text() == before
    assert sorted(p.name for p in folder.iterdir()) == ["test"]


@pytest.mark.slow
def test_training_with_calibrate_stores_the_temperature_in_the_tested_ckpt(quick):
    from cnnlab.commands.train import train

    cfg = quick("test=true", "calibrate=true", "data.train_limit=600")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    cal = json.loads((run / "eval" / "test" / "metrics.json").read_text())["calibration"]
    tested = json.loads((run / "metrics.json").read_text())["tested_ckpt"]
    assert tested == "last.ckpt"  # test_ckpt=last, the default
    assert cnnlab.load(run / "checkpoints" / tested).temperature == pytest.approx(
        cal["temperature"]
    )
    assert cal["temperature"] != 1.0 and cal["after"]["nll"] <= cal["before"]["nll"]


def test_past_200_classes_the_matrix_is_in_the_csv_not_drawn(tmp_path):
    """10,000 classes ran out of memory drawing the picture; the numbers need no picture."""
    from cnnlab.analysis.eval_figures import DRAWN_UP_TO
    from cnnlab.callbacks.diagnostics import Diagnostics

    n = DRAWN_UP_TO + 1
    names = [f"c{i}" for i in range(n)]
    collected = evaluation.Collected(torch.randn(2 * n, n), torch.arange(n).repeat(2), [])
    eval_report.write(tmp_path, "test", collected, names, lambda x: x)
    written = {p.name for p in (tmp_path / "test").iterdir()}
    assert "confusion_matrix.csv" in written and "confusion_matrix.png" not in written
    assert len((tmp_path / "test" / "confusion_matrix.csv").read_text().splitlines()) == n + 1
    assert Diagnostics.confusion(torch.randn(4, n).softmax(1), torch.arange(4), names) is None

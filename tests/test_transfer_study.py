"""The offline transfer demo end to end on real digits: pretrain on 0–4, transfer to 5–9."""

from __future__ import annotations

import csv

import pytest


@pytest.mark.slow
def test_digits_transfer_beats_training_from_scratch(command, tmp_path):
    pre = command("train", "experiment=digits_pretrain")
    assert pre.returncode == 0, pre.stderr[-2000:]
    assert (tmp_path / "outputs/train/runs/digits_0to4/checkpoints/last.ckpt").is_file()
    sweep = tmp_path / "sweep"
    # Half the transfer page's learning-rate grid (command-line sweeps replace the experiment's).
    lrs = "optimizer.lr=3e-4,3e-3,3e-2"
    study = command("train", "experiment=digits_transfer", lrs, f"hydra.sweep.dir={sweep}")
    assert study.returncode == 0, study.stderr[-2000:]
    with open(sweep / "report.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    best: dict[str, dict] = {}  # per strategy, the learning rate with the best validation accuracy
    for r in rows:
        if r["transfer"] not in best or float(r["val/acc_best"]) > float(
            best[r["transfer"]]["val/acc_best"]
        ):
            best[r["transfer"]] = r
    test_acc = {name: float(r["test/acc"]) for name, r in best.items()}
    for strategy in ("linear_probe", "partial", "finetune"):
        assert test_acc[strategy] > test_acc["scratch"] + 0.05, test_acc
    report = (sweep / "report.md").read_text()
    assert "Best job per `transfer`" in report and (sweep / "report.png").stat().st_size > 0

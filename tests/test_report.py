"""Sweep reports: one row per job, failed ones included: Markdown, CSV, plot, TensorBoard text."""

from __future__ import annotations

import csv
import json

import pytest

from cnnlab.analysis.sweep_report import write
from cnnlab.commands.report import main


def _job(root, num, overrides, metrics=None, error=None):
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    if error:
        (job / "train.log").write_text(f"[2026-11-25 10:00:00,000][cnnlab][ERROR] - {error}\n")


def _sweep(root):
    ok = {"params": 1234, "best_epoch": 2, "wall_s": 12.34}
    _job(root, 0, ["model=mlp", "optimizer.lr=0.1"], {"val/acc_best": 0.9, "test/acc": 0.88, **ok})
    _job(root, 1, ["model=mlp", "optimizer.lr=10"], error="non-finite loss at step 3")
    _job(root, 2, ["model=convnet", "optimizer.lr=0.1"], {"val/acc_best": 0.8, "test/acc": 0.79})
    _job(root, 10, ["model=convnet", "optimizer.lr=0.01"], {"val/acc_best": 0.95, "test/acc": 0.9})


def test_report_lists_every_job_and_marks_failures(tmp_path):
    _sweep(tmp_path)
    rows = write(tmp_path)
    assert [r["job"] for r in rows] == ["0", "1", "2", "10"]
    assert [r["status"] for r in rows] == ["ok", "failed", "ok", "ok"]
    assert rows[1]["error"] == "non-finite loss at step 3"
    md = (tmp_path / "report.md").read_text()
    assert "| job | model | optimizer.lr | status | params | val/acc_best |" in md
    assert "| 0 | mlp | 0.1 | ok | 1,234 | 0.9000 | 0.8800 | 2 | 12.3 |  |" in md
    assert "4 jobs, 3 finished, 1 failed" in md
    with open(tmp_path / "report.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 4 and table[1]["status"] == "failed" and table[3]["model"] == "convnet"
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_best_job_per_group_is_chosen_by_validation_not_test(tmp_path):
    _sweep(tmp_path)
    md = (tmp_path / "report.md", write(tmp_path, group_by="model"))[0].read_text()
    best = md.split("Best job per `model`")[1]
    assert "| mlp | 0 | 0.1 |" in best and "| convnet | 10 | 0.01 |" in best
    assert "| convnet | 2 |" not in best


def test_report_cli_writes_tensorboard_text(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _sweep(tmp_path)
    main([str(tmp_path), "--group-by", "model"])
    assert "Best job per `model`" in capsys.readouterr().out
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    acc.Reload()
    text = acc.Tensors("sweep/report/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "non-finite loss at step 3" in text


def test_report_of_a_folder_without_jobs_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path)])
    assert exit_.value.code == 1
    assert "is not a multirun folder" in capsys.readouterr().err


def test_report_bars_are_named_by_what_each_job_set_not_its_number():
    from cnnlab.analysis.report_plot import bars

    rows = [{"job": 0, "set": {"optimizer": "sgd", "seed": "1"}},
            {"job": 1, "set": {"optimizer": "adam", "seed": "1"}},
            {"job": 2, "set": {"optimizer": "sgd", "seed": "2"}}]  # fmt: skip
    _, labels, keys = bars(rows, ["optimizer", "seed"], None)
    assert labels == ["sgd, 1", "adam, 1", "sgd, 2"] and keys == ["optimizer", "seed"]
    ordered, labels, keys = bars(rows, ["seed", "optimizer"], "optimizer")
    assert labels == ["adam, 1", "sgd, 1", "sgd, 2"] and keys == ["optimizer", "seed"]
    assert [r["job"] for r in ordered] == [1, 0, 2]

"""Sweep reports: one row per job, failed jobs included, Markdown and CSV."""

from __future__ import annotations

import csv
import json

from cnnlab.report import write


def _job(root, num, overrides, metrics=None, error=None):
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    if error:
        (job / "train.log").write_text(f"[2026-11-25 10:00:00,000][cnnlab][ERROR] - {error}\n")


def test_report_lists_every_job_and_marks_failures(tmp_path):
    _job(
        tmp_path,
        0,
        ["optimizer.lr=0.1"],
        {"val/acc_best": 0.9, "test/acc": 0.88, "params": 1234, "best_epoch": 2, "wall_s": 12.34},
    )
    _job(tmp_path, 1, ["optimizer.lr=10"], error="non-finite loss at step 3")
    _job(tmp_path, 10, ["optimizer.lr=0.01"], {"val/acc_best": 0.8, "test/acc": 0.79})
    rows = write(tmp_path)
    assert [r["job"] for r in rows] == ["0", "1", "10"]
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"] == "non-finite loss at step 3"
    md = (tmp_path / "report.md").read_text()
    assert "| 0 | optimizer.lr=0.1 | ok | 1,234 | 0.9000 | 0.8800 | 2 | 12.3 |  |  |" in md
    with open(tmp_path / "report.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3

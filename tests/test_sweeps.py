"""Sweeps beyond the basic sweeper: Optuna trials and submitit jobs, each ending in a report that
lists every job, failed ones included."""

from __future__ import annotations

import csv

import pytest

from cnnlab.commands.report import main as report_main

pytestmark = pytest.mark.slow
SMALL = ["debug=test", "data.train_limit=256", "callbacks=[none,nonfinite]", "logger=none"]


def _rows(sweep) -> list[dict]:
    with open(sweep / "report.csv") as fh:
        return list(csv.DictReader(fh))


def test_optuna_sweep_runs_its_trials_and_reports_them(command, tmp_path):
    sweep = tmp_path / "optuna"
    proc = command(
        "train",
        "hparams_search=digits_optuna",
        "hydra.sweeper.n_trials=3",
        *SMALL,
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Best value:" in proc.stdout + proc.stderr
    rows = _rows(sweep)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"ok"}
    lrs = {float(r["optimizer.lr"]) for r in rows}  # sampled, not the config's 3e-3
    assert len(lrs) == 3 and all(3e-4 <= lr <= 1e-2 for lr in lrs)
    assert (sweep / "report.png").is_file() and list((sweep / "tb").iterdir())


def test_submitit_local_sweep_reports_a_failing_job_as_failed(cli, tmp_path, capsys):
    sweep = tmp_path / "submitit"
    proc = cli(
        "train",
        "-m",
        "launcher=submitit_local",
        "optimizer.lr=0.003,0.002",
        "+callbacks.nan._target_=tests.faults.NanLossAt",  # the second job's loss turns NaN:
        "+callbacks.nan.steps=[1]",  # it must fail, visibly
        "+callbacks.nan.job=1",
        *SMALL,
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 1
    assert (sweep / ".submitit").is_dir()  # the jobs really went through submitit
    rows = _rows(sweep)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert "non-finite loss" in rows[1]["error"]
    assert list((sweep / "tb").glob("events.out.tfevents.*"))  # written although a job failed
    report_main([str(sweep)])  # `make report DIR=…` rebuilds the same table from the folders
    out = capsys.readouterr().out
    assert "2 jobs, 1 finished, 1 failed" in out and "| 1 | 0.002 | failed |" in out


def test_a_sweep_stopped_by_sigterm_reports_every_job(cli, tmp_path):
    sweep = tmp_path / "stopped"
    proc = cli(
        "train",
        "-m",
        "debug=test",
        "data=fake",
        "optimizer.lr=0.003,0.001,0.0003",
        "+callbacks.fault._target_=tests.faults.SignalAt",
        "+callbacks.fault.signal_name=SIGTERM",
        "+callbacks.fault.step=3",
        "+callbacks.fault.job=1",  # only the second job is stopped
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 143, proc.stderr[-3000:]
    rows = _rows(sweep)
    assert [r["status"] for r in rows] == ["ok", "interrupted", "not started"]
    assert rows[1]["error"].startswith("checkpoint ") and rows[1]["error"].endswith(".ckpt")
    assert [r["optimizer.lr"] for r in rows] == ["0.003", "0.001", "0.0003"]  # still columns
    report = (sweep / "report.md").read_text()
    assert "3 jobs, 1 finished, 0 failed, 1 interrupted, 1 not started" in report


def test_a_sweep_stopped_while_a_job_starts_writes_its_report(cli, tmp_path):
    sweep = tmp_path / "starting"
    proc = cli("train", "-m", "debug=test", "data=fake", "optimizer.lr=0.003,0.001,0.0003",
               "+callbacks.fault._target_=tests.faults.SignalOnBuild", "+callbacks.fault.job=1",
               f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert proc.returncode == 143, proc.stderr[-3000:]
    rows = _rows(sweep)
    assert [r["status"] for r in rows] == ["ok", "interrupted", "not started"]
    assert rows[1]["error"] == "no checkpoint"
    report = (sweep / "report.md").read_text()
    assert "3 jobs, 1 finished, 0 failed, 1 interrupted, 1 not started" in report


@pytest.mark.slow
def test_the_same_sweep_command_skips_finished_jobs_and_resumes_the_interrupted_one(cli, tmp_path):
    """A 4-job sweep with a pinned id, stopped by SIGTERM during job 3, then run again as is."""
    command = [
        "train", "-m", "debug=test", "data=fake", "data.source.num_samples=256",
        "optimizer.lr=0.003,0.002,0.001,0.0005", "run_id=again",
        "+callbacks.fault._target_=tests.faults.SignalAt", "+callbacks.fault.signal_name=SIGTERM",
        "+callbacks.fault.step=2", "+callbacks.fault.job=2",
        f"+callbacks.fault.once={tmp_path / 'fired'}",
    ]  # fmt: skip
    sweep = tmp_path / "outputs" / "train" / "multirun" / "runs" / "again"
    first = cli(*command)
    assert first.returncode == 143, first.stderr[-3000:]
    assert [r["status"] for r in _rows(sweep)] == ["ok", "ok", "interrupted", "not started"]
    finished = {j: (sweep / j / "checkpoints" / "best.ckpt").stat().st_mtime_ns for j in "01"}
    again = cli(*command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r["status"] for r in _rows(sweep)] == ["ok"] * 4
    for job, mtime in finished.items():  # not trained again
        assert "already finished" in (sweep / job / "train.log").read_text()
        assert (sweep / job / "checkpoints" / "best.ckpt").stat().st_mtime_ns == mtime
    assert "resuming from" in (sweep / "2" / "train.log").read_text()
    assert "4 jobs, 4 finished" in (sweep / "report.md").read_text()

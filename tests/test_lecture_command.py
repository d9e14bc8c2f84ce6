"""`cnnlab-lecture` as a user runs it: its argument and folder mistakes in one line, a failed
sweep, one small claim end to end, and a stop by SIGTERM that resumes. The claims' verdicts on
made-up tables are tests/test_lecture.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LECTURE = "cnnlab.commands.lecture"


def test_unknown_claim_is_one_line_and_exit_2(tmp_path):
    """Said before torch loads: the lecture's argument mistakes cost no import of it."""
    probe = "import sys, cnnlab.commands.lecture; print(*{m.split('.')[0] for m in sys.modules})"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert not {"torch", "lightning", "hydra"} & set(loaded.stdout.split())
    run = subprocess.run([sys.executable, "-m", LECTURE, "--only", "dropout"],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: unknown claim 'dropout'; valid: connectivity, sharing, pooling, batchnorm, "
        "normalization, residual, imagenet, augmentation, transfer, probe_finetune, gradcam"
    ]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--report-only"], "error: --report-only needs --out: the lecture folder to report on"),
        (
            ["--out", "{used}"],
            "error: {used} already holds files but no lecture run to resume "
            "(no claims.json); choose another --out",
        ),
        (["--out", "{empty}", "--report-only"], "error: {empty} holds no lecture run"),
    ],
)
def test_lecture_folder_mistakes_are_one_line_and_touch_nothing(tmp_path, args, expect):
    used, empty = tmp_path / "used", tmp_path / "empty"
    used.mkdir()
    (used / "report.md").write_text("kept")
    fill = {"used": used, "empty": empty}
    run = subprocess.run([sys.executable, "-m", LECTURE, "--only", "connectivity",
                          *(a.format(**fill) for a in args)],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[0].startswith(expect.format(**fill)), run.stderr
    assert (used / "report.md").read_text() == "kept" and not empty.exists()


def test_the_single_pretraining_run_gets_every_override_but_the_sweepers():
    from cnnlab.lecture.run import single_run

    args = ["trainer.max_epochs=1", "hydra.sweeper.params.seed=1", "seed=1",
            "+hydra.sweeper.max_batch_size=2", "optimizer.lr=0.1"]  # fmt: skip
    assert single_run(args) == ["trainer.max_epochs=1", "seed=1", "optimizer.lr=0.1"]


def test_a_failed_sweep_gives_no_verdict_and_exit_1(tmp_path):
    """Also: without --out the lecture folder goes under CNNLAB_ROOT, as every command's runs do,
    not under the folder it was started from."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run([sys.executable, "-m", LECTURE, "--only", "connectivity",
                          "trainer.max_epochs=abc"], capture_output=True, text=True, cwd=elsewhere,
                         env={**os.environ, "CNNLAB_ROOT": str(root),
                              "PYTHONPATH": f"{REPO / 'src'}:{REPO}"})  # fmt: skip
    assert run.returncode == 1, run.stderr[-2000:]
    (out,) = (root / "outputs" / "lecture").iterdir()
    assert list(elsewhere.iterdir()) == []
    text = (out / "report.md").read_text()
    assert "| connectivity | no verdict (the sweep failed (exit 1); see " in text
    assert "trainer.max_epochs" in (out / "connectivity.log").read_text()


def _cells(table_row: str) -> list[str]:
    return [c.strip() for c in table_row.strip().strip("|").split("|")]


@pytest.mark.slow
def test_one_small_claim_end_to_end_its_verdict_follows_from_its_table(tmp_path):
    out = tmp_path / "lecture"
    run = subprocess.run(
        [sys.executable, "-m", LECTURE, "--only", "connectivity", "--out", str(out),
         "--data-dir", str(REPO / "data"), "trainer.max_epochs=1", "data.train_limit=300",
         "hydra.sweeper.params.seed=1", "callbacks.progress_bar=null"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    text = (out / "report.md").read_text()
    rows = {c[0]: c for c in map(_cells, re.findall(r"^\| (?:mlp|convnet) \|.*$", text, re.M))}
    # One seed per network (the table's seeds column): nothing can be tested across seeds.
    assert {rows[m][2] for m in ("mlp", "convnet")} == {"1"}, text
    verdict = re.search(r"^\*\*Verdict\*\*: (.*)$", text, re.M).group(1)
    assert verdict == ("not judged: 1 seed(s) for the MLP and others; a test across seeds needs "
                       "at least 3 (seed=1,2,3)"), text  # fmt: skip
    assert f"| connectivity | {verdict} |" in text
    assert text.splitlines()[2].startswith(
        '`make lecture ONLY=connectivity ARGS="trainer.max_epochs=1 data.train_limit=300 '
        'hydra.sweeper.params.seed=1 callbacks.progress_bar=null"` on '
    )
    assert (out / "connectivity.png").stat().st_size > 1000
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert len([p for p in (out / "connectivity").iterdir() if p.name.isdigit()]) == 2
    # --report-only trains nothing and recomputes the same verdict from the folders, of the
    # claims the folder was made with (no --only repeated).
    assert json.loads((out / "claims.json").read_text()) == ["connectivity"]
    again = subprocess.run(
        [sys.executable, "-m", LECTURE, "--out", str(out),
         "--data-dir", str(REPO / "data"), "--report-only"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "report.md").read_text() == text  # its date and total time included
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1
    assert len([p for p in (out / "connectivity").iterdir() if p.name.isdigit()]) == 2


@pytest.mark.slow
def test_a_lecture_stopped_by_sigterm_reports_and_resumes(tmp_path):
    """SIGTERM to make lecture while its sweep trains: the sweep saves and reports, the lecture
    says how to go on (exit 143); --report-only reports what is there, and the same command
    resumes and finishes."""
    out = tmp_path / "lecture"
    command = [sys.executable, "-m", LECTURE, "--only", "connectivity", "--out", str(out),
               "--data-dir", str(REPO / "data"), "trainer.max_epochs=1", "data.train_limit=300",
               "hydra.sweeper.params.seed=1", "callbacks.progress_bar=null",
               "+callbacks.fault._target_=tests.faults.SignalAt", "+callbacks.fault.step=2",
               "+callbacks.fault.signal_name=SIGTERM", "+callbacks.fault.to_parent=true",
               f"+callbacks.fault.once={tmp_path / 'sent'}"]  # fmt: skip
    stopped = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"error: the lecture was stopped (SIGTERM); {out} keeps every sweep that finished and "
        f"the stopped one's checkpoints: run the same command to resume, or add --report-only "
        f"to report what is there"
    )
    record = json.loads((out / "connectivity.json").read_text())
    assert record["error"].startswith("stopped by SIGTERM")
    assert (out / "connectivity" / "report.md").is_file()  # the sweep's own, on its SIGTERM
    report_only = subprocess.run([*command[:3], *command[5:9], "--report-only"],
                                 capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert report_only.returncode == 1, report_only.stderr[-2000:]  # no verdict yet: says so
    assert "stopped by SIGTERM" in (out / "report.md").read_text()
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert re.search(r"^\| connectivity \| not judged: 1 seed\(s\)", (
        out / "report.md").read_text(), re.M)  # fmt: skip

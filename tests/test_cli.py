"""The command line as a user types it: bad input fails in one line; multirun makes folders."""

from __future__ import annotations

from pathlib import Path

import pytest


def _checkpoints(root: Path) -> list[Path]:
    return list(root.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs"),
        ("model=nope", "valid options: alexnet, alexnet_tv, convnet"),
        ("data=cifar10", "no dataset files in"),
        ("max_epoch=3", "max_epoch"),
    ],
)
def test_bad_input_exits_1_with_one_line(command, tmp_path, override, expect):
    proc = command("train", override, "paths.data_dir=" + str(tmp_path / "empty"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expect in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert _checkpoints(tmp_path) == []


def test_eval_needs_ckpt_path(command):
    proc = command("eval")
    assert proc.returncode == 1
    assert "ckpt_path" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_refuses_a_truncated_checkpoint(command, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    proc = command("eval", f"ckpt_path={bad}")
    assert proc.returncode == 1 and f"{bad} is truncated or not a checkpoint" in proc.stderr


@pytest.mark.slow
def test_multirun_two_learning_rates_two_run_folders(command, tmp_path):
    proc = command("train", "-m", "data=fake", "optimizer.lr=0.01,0.001", "debug=test")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted((tmp_path / "outputs" / "train" / "multirun").glob("*/*/[0-9]*"))
    assert [j.name for j in jobs] == ["0", "1"]
    lrs = set()
    for job in jobs:
        assert (job / "checkpoints" / "best.ckpt").is_file()
        assert list((job / "tb").glob("events.out.tfevents.*"))
        lrs.add(
            (job / ".hydra" / "overrides.yaml").read_text().split("optimizer.lr=")[1].split()[0]
        )
    assert lrs == {"0.01", "0.001"}

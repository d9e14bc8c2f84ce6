"""One owner per run folder from its first byte: a second start of the same run_id, at any moment
of the first run's life, is refused in one line before torch is imported and leaves the live
run's files exactly as they were (Hydra's .hydra/, the log, events, checkpoints)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.faults import IMPORT_GATE


def _snapshot(run: Path) -> dict[str, str]:
    """Every file under the run folder → the hash of its bytes."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def _gated(args: list[str], env: dict[str, str]) -> list[str]:
    return [sys.executable, "-c", IMPORT_GATE, "cnnlab.commands.train", *args]


@pytest.mark.slow
def test_a_second_start_never_touches_the_live_run(tmp_path, data_dir):
    reached, proceed = tmp_path / "reached", tmp_path / "proceed"
    os.mkfifo(reached)
    os.mkfifo(proceed)
    env = {
        **os.environ,
        "CNNLAB_ROOT": str(tmp_path),
        "CNNLAB_DATA": str(data_dir),
        "GATE_REACHED": str(reached),
        "GATE_PROCEED": str(proceed),
    }
    run = tmp_path / "outputs" / "train" / "runs" / "live"
    first = subprocess.Popen(
        _gated(
            [
                "run_id=live",
                "debug=test",
                "data=fake",
                "trainer.max_epochs=2",
                "+callbacks.pause._target_=tests.faults.PauseAt",
                "+callbacks.pause.step=9",  # in epoch 1, after epoch 0's checkpoints and events
                f"+callbacks.pause.reached={reached}",
                f"+callbacks.pause.proceed={proceed}",
            ],
            env,
        ),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    refused_env = {**env, "GATE_REFUSE": "1"}  # the second start must not reach torch
    second = _gated(["run_id=live", "model=mlp", "optimizer.lr=0.1"], refused_env)
    try:
        for moment in ("torch", "step 9"):  # before the first imports torch; during training
            assert reached.read_text().strip() == moment
            before = _snapshot(run)
            assert ".hydra/config.yaml" in before and "train.log" in before
            refused = subprocess.run(
                second, cwd=REPO, env=refused_env, capture_output=True, text=True, timeout=120
            )
            lines = refused.stderr.strip().splitlines()
            assert refused.returncode == 1 and len(lines) == 1, refused.stderr[-2000:]
            assert lines[0].startswith("error: run folder "), lines[0]  # not the gate's ImportError
            assert f"is in use by process {first.pid} " in lines[0]
            assert _snapshot(run) == before, moment  # not a byte written, changed or removed
            if moment == "step 9":
                assert any(name.startswith("checkpoints/") for name in before)
                assert any(name.startswith("tb/") for name in before)
            proceed.write_text("go\n")
        out, err = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    assert "model=mlp" not in (run / ".hydra" / "overrides.yaml").read_text()
    assert "cnnlab.models.convnet" in (run / ".hydra" / "config.yaml").read_text()
    assert "in use by process" not in (run / "train.log").read_text()
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "metrics.json").is_file()

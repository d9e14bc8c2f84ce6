"""DDP on CPU (2 gloo processes, `trainer=ddp_cpu`): synced metrics, rank-0-only outputs, and the
subprocess launcher inside a Hydra multirun."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.core.errors import LOST_RANK

pytestmark = pytest.mark.slow


def test_ddp_cpu_multirun_syncs_val_acc_and_writes_one_set_of_outputs_per_job(
    cli, command, tmp_path
):
    sweep = tmp_path / "sweep"
    proc = cli(
        "train",
        "-m",
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        "data.train_limit=256",
        "optimizer.lr=0.003,0.001",
        "test=false",
        f"hydra.sweep.dir={sweep}",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == ["0", "1"]  # the second rank did not start sweeps of its own
    lrs = [Path(sweep / j / ".hydra" / "overrides.yaml").read_text() for j in jobs]
    assert "optimizer.lr=0.003" in lrs[0] and "optimizer.lr=0.001" in lrs[1]
    for job in jobs:
        run = sweep / job
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 1  # rank 0 only
        assert len(list(run.rglob("events.out.tfevents.*"))) == 1
        record = json.loads((run / "metrics.json").read_text())
        assert record["effective_batch_size"] == 2 * 64
        assert "effective batch 128 images per optimizer step" in (run / "train.log").read_text()

    # mnist_sample's 400 validation digits split evenly over 2 ranks (no sampler padding): rank 1
    # alone would report its own half; one process over all 400 must agree exactly.
    logged = json.loads((sweep / "0" / "metrics.json").read_text())
    single = command(
        "eval", f"ckpt_path={sweep / '0' / 'checkpoints' / 'last.ckpt'}", "split=val", "run_id=e"
    )
    assert single.returncode == 0, single.stderr[-3000:]
    evaluated = json.loads(
        (tmp_path / "outputs" / "eval" / "runs" / "e" / "metrics.json").read_text()
    )
    assert logged["val/acc"] == pytest.approx(evaluated["val/acc"], abs=1e-6)


def test_a_killed_rank_ends_the_run_in_one_line_not_at_the_collective_timeout(cli, tmp_path):
    proc = cli(
        "train",
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        "run_id=killed",
        "+callbacks.fault._target_=tests.faults.SignalAt",
        "+callbacks.fault.step=3",
        "+callbacks.fault.rank=1",  # SIGKILL to the second process only
        timeout=180,  # gloo's collective timeout is 30 minutes: ending at all here is the test
    )
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-3000:]
    assert "a DDP process ended" in errors[0]


# Rank 0 of a `ddp` run, reduced to the launcher's watcher: a started rank that died (exit 3),
# and a main thread that either hangs in a collective or ends by itself.
WATCHED = """
import subprocess, sys, threading
from cnnlab.training.rank_watch import RankWatch
decided = threading.Event()
class Watch(RankWatch):
    def _terminate_all(self):
        decided.set()
        super()._terminate_all()
rank = subprocess.Popen([sys.executable, "-c", "import os; os._exit(3)"])
Watch([rank], poll_s=0.01, grace_s=float(sys.argv[1])).start()
if sys.argv[2] == "hangs":
    threading.Event().wait()  # a collective waiting for the lost rank: only the watcher ends it
decided.wait()
sys.exit(7)  # rank 0's own ending, after the watcher saw the lost rank
"""


@pytest.mark.parametrize(("main", "grace_s", "code"), [("hangs", "0", 1), ("ends", "60", 7)])
def test_the_rank_watch_ends_a_hung_rank_0_in_one_line_and_lets_it_end_by_itself(
    main, grace_s, code
):
    proc = subprocess.run(
        [sys.executable, "-c", WATCHED, grace_s, main], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == code, proc.stderr[-3000:]  # Lightning's own watcher: -9 in both
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert errors == ([f"error: {LOST_RANK}"] if main == "hangs" else [])


def test_a_ddp_trainer_starts_the_rank_watch_not_lightnings_own(compose, monkeypatch):
    from lightning.pytorch.strategies.launchers import subprocess_script

    from cnnlab.training import build, rank_watch

    stock = subprocess_script._launch_process_observer
    monkeypatch.setattr(subprocess_script, "_launch_process_observer", stock)  # undone after
    trainer = build.trainer(compose("data=fake", "trainer=ddp_cpu"), callbacks=[], loggers=[])
    assert isinstance(trainer.strategy.launcher, subprocess_script._SubprocessScriptLauncher)
    assert subprocess_script._launch_process_observer is rank_watch._launch

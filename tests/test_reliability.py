"""Reliability: exact resume, kills and signals, non-finite losses, unsafe and broken checkpoints.
Each test injects the fault and fails if its guarantee breaks."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.callbacks.nonfinite import NonFiniteError
from cnnlab.errors import UserError
from cnnlab.train import train

# Shuffle, augmentation and (last) dropout: everything that makes an inexact resume show.
BASE = [
    "debug=test",
    "data=fake",
    "data.source.num_samples=192",
    "augment=mnist",
    "model.net.dropout=0.5",
]
CLI = [*BASE, "run_id=job", "callbacks.model_checkpoint.every_n_train_steps=3"]


def _weights(run: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)[
        "state_dict"
    ]


@pytest.mark.slow
def test_resume_is_exact_with_shuffle_dropout_and_augmentation(compose, tmp_path):
    full = compose(*BASE, "trainer.max_epochs=3", f"paths.output_dir={tmp_path / 'full'}")
    train(full)
    part = [*BASE, "run_id=r", f"paths.output_dir={tmp_path / 'part'}", "trainer.max_epochs=3"]
    train(
        compose(
            *part, "+callbacks.stop._target_=tests.faults.StopAfterEpoch", "+callbacks.stop.epoch=0"
        )
    )
    assert _weights(tmp_path / "part").keys()  # stopped after epoch 0 with a last.ckpt
    train(compose(*part))  # a new run: run_id pins the folder, so it resumes by itself
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # What sweeps and Optuna read: metrics.json and the logged running best, as if uninterrupted.
    same = ("val/acc", "val/acc_best", "best_epoch", "epochs", "train/loss")
    full_m, part_m = (
        json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("full", "part")
    )
    assert {k: full_m[k] for k in same} == {k: part_m[k] for k in same}
    assert _scalars(tmp_path / "full", "val/acc_best") == _scalars(
        tmp_path / "part", "val/acc_best"
    )


def _scalars(run: Path, tag: str) -> dict[int, float]:
    """step → value of one TensorBoard scalar over every events file of a run (resumes too)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {e.step: round(e.value, 6) for e in acc.Scalars(tag)}


@pytest.mark.slow
def test_the_best_so_far_survives_a_resume(quick, tmp_path):
    run = [*BASE, "run_id=best", f"paths.output_dir={tmp_path / 'best'}", "scheduler=none"]
    train(quick(*run))
    last = tmp_path / "best" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    assert state["best_so_far"]["epoch"] == 0
    state["best_so_far"] = {"val/acc": 1.0, "epoch": 0}  # a best the next epoch cannot beat
    torch.save(state, last)
    metrics, _ = train(quick(*run, "trainer.max_epochs=2"))
    record = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert metrics["val/acc_best"] == 1.0 and record["val/acc_best"] == 1.0
    assert record["best_epoch"] == 0 and record["epochs"] == 2


@pytest.mark.slow
def test_kill_9_leaves_a_loadable_last_checkpoint_and_resume_finishes(cli, command, tmp_path):
    proc = cli(
        "train",
        *CLI,
        "trainer.max_epochs=2",
        "+callbacks.fault._target_=tests.faults.SignalAt",
        "+callbacks.fault.step=7",
    )
    assert proc.returncode == -9
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 6  # saved every 3 steps, killed at step 7
    assert not list((run / "checkpoints").glob(".*tmp*"))  # no half-written file left visible
    proc = command("train", *CLI, "trainer.max_epochs=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 10


@pytest.mark.slow
def test_sigterm_saves_and_exits_143_then_resumes(cli, command, tmp_path):
    proc = cli(
        "train",
        *CLI,
        "trainer.max_epochs=2",
        "+callbacks.fault._target_=tests.faults.SignalAt",
        "+callbacks.fault.step=5",
        "+callbacks.fault.signal_name=SIGTERM",
    )
    assert proc.returncode == 143, proc.stderr[-2000:]
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    proc = command("train", *CLI, "trainer.max_epochs=2")
    assert (
        proc.returncode == 0
        and "resuming from" in proc.stderr + proc.stdout + (run / "train.log").read_text()
    )


@pytest.mark.slow
def test_ctrl_c_exits_130(cli):
    proc = cli(
        "train",
        *CLI,
        "trainer.max_epochs=2",
        "+callbacks.fault._target_=tests.faults.SignalAt",
        "+callbacks.fault.step=3",
        "+callbacks.fault.signal_name=SIGINT",
    )
    assert proc.returncode == 130, proc.stderr[-2000:]


def test_nonfinite_loss_stops_naming_the_step_and_writes_no_checkpoint(compose, tmp_path):
    cfg = compose(*BASE, "optimizer.lr=1e9", "trainer.max_epochs=2")
    with pytest.raises(NonFiniteError, match=r"non-finite loss .* at step \d+"):
        train(cfg)
    assert not list(Path(cfg.paths.output_dir).rglob("*.ckpt"))


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_never_runs(command, compose, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": _Exploit(marker)}, evil, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    proc = command("eval", f"ckpt_path={evil}")
    assert proc.returncode == 1 and "is unsafe or not a checkpoint" in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert line.endswith(
        "it holds pickled code (Unsupported operand 149), which weights_only=True refuses to "
        "load (nothing in it was run)"
    )
    assert "Warning" not in proc.stderr  # torch's pickle-protocol warning is not printed first
    from cnnlab.training import build

    with pytest.raises(UserError, match="unsafe or not a checkpoint"):
        build.data_and_network(compose("data=fake", f"model.weights={evil}"))
    from cnnlab.explain import explain

    with pytest.raises(UserError, match="unsafe or not a checkpoint"):
        explain(compose(f"ckpt_path={evil}", f"images={tmp_path}", config_name="explain"))
    assert not marker.exists()


def test_checkpoint_of_another_model_is_refused_in_one_line(command, compose, tmp_path):
    cfg = compose("debug=test", "data=fake", "model=mlp")
    train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    state["hyper_parameters"]["config"]["model"] = dict(
        compose("data=fake", "model=convnet").model,
        net={
            **compose("data=fake").model.net,
            "in_channels": 3,
            "num_classes": 10,
            "image_size": 32,
        },
    )
    torch.save(state, tmp_path / "mixed.ckpt")
    proc = command("eval", f"ckpt_path={tmp_path / 'mixed.ckpt'}")
    assert proc.returncode == 1
    line = [x for x in proc.stderr.splitlines() if x.startswith("error:")][0]
    assert "does not fit this model" in line and "missing" in line and "unexpected" in line


def test_resuming_from_another_models_checkpoint_is_one_line(compose, tmp_path):
    cfg = compose("model=lenet5", *BASE[:-1])  # lenet5 has no dropout
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    other = compose("model=convnet", "trainer.max_epochs=2", f"ckpt_path={last}", *BASE)
    with pytest.raises(
        UserError, match=r"ckpt_path=.*does not fit this model \(.*missing.*unexpected"
    ):
        train(other)


@pytest.mark.slow
def test_exception_mid_epoch_saves_a_checkpoint_and_resume_warns(command, tmp_path):
    proc = command(
        "train",
        *CLI,
        "trainer.max_epochs=2",
        "+callbacks.fault._target_=tests.faults.RaiseAt",
        "+callbacks.fault.step=4",
    )
    assert proc.returncode == 1 and "RuntimeError: disk on fire" in proc.stderr
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    saved = torch.load(run / "checkpoints" / "on_exception.ckpt", weights_only=True)
    assert saved["global_step"] == 4  # last.ckpt (every 3 steps) holds step 3: this is newer
    proc = command("train", *CLI, "trainer.max_epochs=2")
    log = (run / "train.log").read_text()
    assert proc.returncode == 0 and "on_exception.ckpt, saved mid-epoch (epoch 0, step 4)" in log
    done = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # Both epochs finish, 10 steps as uninterrupted; the rest of the interrupted epoch saw its
    # batches in another order than it would have: what the warning is about.
    assert done["epoch"] == 1 and done["global_step"] == 10


@pytest.mark.slow
def test_slurm_sigusr1_saves_requeues_and_the_requeued_job_resumes(cli, command, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # the scheduler, mocked: record the call, then end the job
    scontrol.write_text('#!/bin/bash\necho "$@" >> "$SCONTROL_LOG"\nkill -9 $PPID\n')
    scontrol.chmod(0o755)
    slurm = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SCONTROL_LOG": str(tmp_path / "scontrol.log"),
        "SLURM_NTASKS": "1",
        "SLURM_JOB_NAME": "train",
        "SLURM_JOB_ID": "4242",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }
    proc = cli(
        "train",
        *CLI,
        "trainer.max_epochs=2",
        "+callbacks.fault._target_=tests.faults.SignalAt",
        "+callbacks.fault.step=5",
        "+callbacks.fault.signal_name=SIGUSR1",
        env=slurm,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    assert torch.load(run / "hpc_ckpt_1.ckpt", weights_only=True)["global_step"] == 5
    proc = command("train", *CLI, "trainer.max_epochs=2", env={**slurm, "SLURM_RESTART_COUNT": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming from" in (run / "train.log").read_text().split("hpc_ckpt_1.ckpt")[0]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 10


def test_a_requeued_slurm_job_resumes_from_its_folder(compose, monkeypatch):
    from cnnlab.training.resume import resume_path

    cfg = compose(*BASE)  # a sweep job: no run_id, but its folder survives the requeue
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert resume_path(cfg) is None  # a fresh job never picks up a stranger's checkpoint
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert resume_path(cfg) == str(ckpt)


def _with(fault: str, steps: list[int]) -> list[str]:
    return [f"+callbacks.fault._target_=tests.faults.{fault}", f"+callbacks.fault.steps={steps}"]


def test_nonfinite_gradient_stops_before_the_weights_change(compose):
    cfg = compose(*BASE, "trainer.max_epochs=2", *_with("NanGradAt", [6]))
    with pytest.raises(NonFiniteError, match=r"non-finite gradient at step 6 in net\."):
        train(cfg)
    run = Path(cfg.paths.output_dir)
    for path in run.rglob("*.ckpt"):  # epoch 0's checkpoints: finite, never the poisoned step
        state = torch.load(path, weights_only=True)
        assert state["global_step"] <= 5
        assert all(
            torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point()
        )


def test_skip_mode_skips_up_to_k_nonfinite_batches_then_stops(compose, caplog):
    ok = compose(
        *BASE,
        "trainer.max_epochs=2",
        "nonfinite.policy=skip",
        "nonfinite.max_skips=2",
        *_with("NanLossAt", [2, 4]),
    )
    with caplog.at_level("WARNING"):
        metrics, objs = train(ok)
    assert "batch skipped (2 of 2 allowed)" in caplog.text
    assert all(torch.isfinite(p).all() for p in objs["model"].parameters())
    assert objs["trainer"].current_epoch == 2  # both epochs ran
    over = compose(
        *BASE,
        "trainer.max_epochs=2",
        "nonfinite.policy=skip",
        "nonfinite.max_skips=1",
        *_with("NanLossAt", [2, 3]),
    )
    with pytest.raises(NonFiniteError, match=r"non-finite loss \(nan\) at step 3"):
        train(over)


def test_ckpt_path_last_without_a_checkpoint_says_it_starts_fresh(compose, caplog):
    from cnnlab.training.resume import resume_path

    with caplog.at_level("WARNING"):
        assert resume_path(compose(*BASE, "ckpt_path=last", "run_id=new")) is None
    assert "ckpt_path=last: no checkpoint in" in caplog.text and "starting fresh" in caplog.text


def test_best_and_last_of_one_step_share_one_write(tmp_path):
    from cnnlab.training.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    state = {"epoch": 0, "global_step": 5, "w": torch.ones(3)}
    io.save_checkpoint(state, tmp_path / "best.ckpt")
    io.save_checkpoint({**state, "note": "last"}, tmp_path / "last.ckpt")
    assert (tmp_path / "best.ckpt").stat().st_ino == (tmp_path / "last.ckpt").stat().st_ino
    io.save_checkpoint({"epoch": 1, "global_step": 10, "w": torch.zeros(3)}, tmp_path / "last.ckpt")
    assert torch.equal(torch.load(tmp_path / "best.ckpt", weights_only=True)["w"], torch.ones(3))
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]


@pytest.mark.slow
def test_one_writer_per_run_folder_and_no_stale_lock_after_kill_9(command, tmp_path):
    run = tmp_path / "outputs" / "train" / "runs" / "same"
    holder = subprocess.Popen(  # another process holding the run's lock, as a running job would
        [sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = command("train", "debug=test", "data=fake", "run_id=same")
        errors = [x for x in second.stderr.splitlines() if x.startswith("error:")]
        assert second.returncode == 1 and len(errors) == 1, second.stderr[-2000:]
        assert f"is in use by process {holder.pid} (started " in errors[0]
        assert not (run / "checkpoints").exists()  # it wrote nothing
    finally:
        holder.kill()  # kill -9: the kernel releases the lock with the process
        holder.wait()
    again = command("train", "debug=test", "data=fake", "run_id=same")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run / "checkpoints" / "last.ckpt").is_file()


HOLD_LOCK = """
import sys, threading
from pathlib import Path
from cnnlab.training.run_lock import exclusive
with exclusive(Path(sys.argv[1])):
    print("locked", flush=True)
    threading.Event().wait()
"""


def _error_lines(proc) -> list[str]:
    return [x for x in proc.stderr.splitlines() if x.startswith("error:")]


@pytest.mark.slow
def test_a_finished_run_stays_finished_and_a_larger_max_epochs_extends_it(command, tmp_path):
    run = tmp_path / "outputs" / "train" / "runs" / "done"
    args = ("train", "debug=test", "data=fake", "run_id=done", "scheduler=none")
    assert command(*args).returncode == 0
    last = run / "checkpoints" / "last.ckpt"
    written = last.stat().st_mtime_ns
    again = command(*args)  # a requeued or repeated job
    assert again.returncode == 0 and not _error_lines(again), again.stderr[-2000:]
    log = (run / "train.log").read_text()
    assert "this run already finished (1 epochs); nothing to train. Final metrics:" in log
    assert last.stat().st_mtime_ns == written  # nothing was trained or saved again
    longer = command(*args, "trainer.max_epochs=2")
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert (
        "extending the finished 1-epoch run to trainer.max_epochs=2"
        in (run / "train.log").read_text()
    )
    progress = torch.load(last, weights_only=True)["loops"]["fit_loop"]["epoch_progress"]
    assert progress["current"]["processed"] == 2
    cycle = ("train", "debug=test", "data=fake", "run_id=cycle")  # scheduler=onecycle (default)
    assert command(*cycle).returncode == 0
    refused = command(*cycle, "trainer.max_epochs=2")
    assert refused.returncode == 1 and len(_error_lines(refused)) == 1
    assert "scheduler=onecycle planned its cycle for 1 epochs" in _error_lines(refused)[0]


@pytest.mark.slow
def test_resuming_with_other_settings_is_refused_naming_them(command, tmp_path):
    args = (
        "train",
        "debug=test",
        "data=fake",
        "run_id=chg",
        "callbacks.model_checkpoint.every_n_train_steps=2",
        "trainer.max_epochs=2",
        "+callbacks.stop._target_=tests.faults.StopAfterEpoch",
        "+callbacks.stop.epoch=0",
    )
    assert command(*args).returncode == 0  # stopped after epoch 0 of 2
    changed = command(*args, "optimizer.lr=0.5", "data.batch_size=16")
    errors = _error_lines(changed)
    assert changed.returncode == 1 and len(errors) == 1, changed.stderr[-2000:]
    assert "cannot resume" in errors[0] and "data.batch_size 32 → 16" in errors[0]
    assert "optimizer.lr 0.003 → 0.5" in errors[0]
    allowed = command(*args[:-2], "trainer.log_every_n_steps=1", "data.num_workers=0")
    assert allowed.returncode == 0, allowed.stderr[-2000:]


@pytest.mark.slow
def test_a_checkpoint_folder_deleted_during_training_is_recreated(quick, tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    cfg = quick(
        "data=fake",
        "trainer.max_epochs=2",
        "test=true",  # the best checkpoint went with the folder: test the final weights
        "+callbacks.fault._target_=tests.faults.DeleteCheckpointsAt",
        "+callbacks.fault.step=8",  # in epoch 1, after epoch 0's checkpoints were written
        f"+callbacks.fault.dirpath={ckpts}",
    )
    metrics, _ = train(cfg)
    state = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == 2
    assert "test/acc" in metrics

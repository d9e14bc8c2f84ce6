"""Resuming a run: exact (weights, metrics.json and the logged running best), one writer per
run folder, finished runs stay finished, changed settings refused, another model's checkpoint
refused, a deleted checkpoint folder recreated."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from cnnlab.commands.train import train
from cnnlab.core.errors import UserError
from tests.test_reliability import BASE, _weights


@pytest.mark.slow
def test_resume_is_exact_with_shuffle_dropout_and_augmentation(compose, tmp_path):
    full = compose(*BASE, "trainer.max_epochs=3", f"paths.output_dir={tmp_path / 'full'}")
    train(full)
    part = [*BASE, "run_id=r", f"paths.output_dir={tmp_path / 'part'}", "trainer.max_epochs=3"]
    # Stopped after epoch 0 (the stop names no later epoch, so the same config resumes).
    part += ["+callbacks.stop._target_=tests.faults.StopAfterEpoch", "+callbacks.stop.epoch=0"]
    train(compose(*part))
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
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        metrics, _ = train(quick(*run, "trainer.max_epochs=2"))
    # A resume writes on into its own folder: Lightning's "not empty" warning is not shown.
    assert not [w for w in said if "exists and is not empty" in str(w.message)]
    record = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert metrics["val/acc_best"] == 1.0 and record["val/acc_best"] == 1.0
    assert record["best_epoch"] == 0 and record["epochs"] == 2


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
from cnnlab.core.run_lock import exclusive
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
    assert "optimizer.lr 0.005 → 0.5" in errors[0]
    allowed = command(*args, "trainer.log_every_n_steps=1", "data.num_workers=0")
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


@pytest.mark.slow
def test_a_kill_during_the_end_of_training_test_is_finished_by_the_next_start(
    cli, command, tmp_path
):
    run = tmp_path / "outputs" / "train" / "runs" / "t"
    args = ("train", "debug=test", "data=fake", "run_id=t", "test=true",
            "+callbacks.kill._target_=tests.faults.KillInTest",
            f"+callbacks.kill.once={tmp_path / 'killed'}")  # fmt: skip
    killed = cli(*args)
    assert killed.returncode == -9
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "metrics.json").exists()
    trained = (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    again = command(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (
        "training finished (1 epochs) but its test and report did not; running them now"
        in (run / "train.log").read_text()
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert "test/acc" in metrics and (run / "eval" / "test" / "metrics.json").is_file()
    assert (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns == trained  # nothing retrained
    assert not [p.name for p in (run / "eval").iterdir() if p.name.startswith(".")]  # no leftovers


def test_a_run_saved_before_a_key_moved_resumes_under_its_new_name():
    from cnnlab.training.resume import changed_keys

    stored = {"decay_norm_and_bias": True, "optimizer": {"lr": 0.1}}
    new = {"optimizer": {"lr": 0.1, "decay_norm_and_bias": True}}
    assert changed_keys(stored, new) == []
    new["optimizer"]["decay_norm_and_bias"] = False
    assert changed_keys(stored, new) == ["optimizer.decay_norm_and_bias True → False"]

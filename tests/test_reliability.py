"""Reliability: exact resume, kills and signals, non-finite losses, unsafe and broken checkpoints.
Each test injects the fault and fails if its guarantee breaks."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from cnnlab.callbacks.nonfinite import NonFiniteError, NonFiniteGuard
from cnnlab.commands.train import train
from cnnlab.core import checkpoint
from cnnlab.core.errors import UserError

# Shuffle, augmentation and (last) dropout: everything that makes an inexact resume show.
BASE = [
    "debug=test",
    "data=fake",
    "data.source.num_samples=192",
    "augment=mnist",
    "model.net.dropout=0.5",
]
CLI = [*BASE, "run_id=job", "callbacks.model_checkpoint.every_n_train_steps=3"]


def _once(tmp_path: Path, fault: str, *settings: str) -> list[str]:
    """A fault callback that fires the first time only: the same command, run again, resumes
    (a checkpoint names only builders the command line names, so the resume names it too)."""
    return [f"+callbacks.fault._target_=tests.faults.{fault}",
            *(f"+callbacks.fault.{s}" for s in settings),
            f"+callbacks.fault.once={tmp_path / 'fault-fired'}"]  # fmt: skip


def _weights(run: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)[
        "state_dict"
    ]


@pytest.mark.slow
def test_kill_9_leaves_a_loadable_last_checkpoint_and_resume_finishes(cli, command, tmp_path):
    args = [*CLI, "trainer.max_epochs=2", *_once(tmp_path, "SignalAt", "step=7")]
    proc = cli("train", *args)
    assert proc.returncode == -9
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 6  # saved every 3 steps, killed at step 7
    assert not list((run / "checkpoints").glob(".*tmp*"))  # no half-written file left visible
    proc = command("train", *args)  # the same command again: it resumes
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 10


@pytest.mark.slow
def test_sigterm_saves_and_exits_143_then_resumes(cli, command, tmp_path):
    args = [*CLI, "trainer.max_epochs=2",
            *_once(tmp_path, "SignalAt", "step=5", "signal_name=SIGTERM")]  # fmt: skip
    proc = cli("train", *args)
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert "LeafSpec" not in proc.stderr  # a torch deprecation in Lightning: filtered (fit.py)
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    proc = command("train", *args)
    assert (
        proc.returncode == 0
        and "resuming from" in proc.stderr + proc.stdout + (run / "train.log").read_text()
    )


@pytest.mark.slow
def test_ctrl_c_in_the_first_epoch_saves_and_resumes_from_that_step(cli, command, tmp_path):
    # No step checkpoints: before this fix nothing was saved until the first epoch ended.
    # The same command twice, as a user would (the fault fires once).
    args = [*BASE, "run_id=job", "trainer.max_epochs=2",
            *_once(tmp_path, "SignalAt", "step=2", "signal_name=SIGINT")]  # fmt: skip
    proc = cli("train", *args)
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert (
        "interrupted (Ctrl-C): exiting 130; resume with ckpt_path=last" in proc.stdout + proc.stderr
    )
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    saved = torch.load(run / "checkpoints" / "on_exception.ckpt", weights_only=True)
    assert (saved["global_step"], saved["epoch"]) == (2, 0)  # the first epoch, at the Ctrl-C
    assert not (run / "checkpoints" / "last.ckpt").exists()
    proc = command("train", *args, "ckpt_path=last")
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = (run / "train.log").read_text()
    assert f"resuming from {run / 'checkpoints' / 'on_exception.ckpt'}, saved mid-epoch " in log
    assert "(epoch 0, step 2)" in log
    steps_per_epoch = saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["ready"]
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["epoch"] == 1 and final["global_step"] > steps_per_epoch  # went on, not over


def test_nonfinite_loss_stops_naming_the_step_and_writes_no_checkpoint(compose, tmp_path):
    cfg = compose(*BASE, "trainer.max_epochs=2", "+callbacks.nan._target_=tests.faults.NanLossAt",
                  "+callbacks.nan.steps=[2]")  # fmt: skip
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
    from cnnlab.commands.explain import explain

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


@pytest.mark.slow
def test_exception_mid_epoch_saves_a_checkpoint_and_resume_warns(command, tmp_path):
    args = [*CLI, "trainer.max_epochs=2", *_once(tmp_path, "RaiseAt", "step=4")]
    proc = command("train", *args)
    assert proc.returncode == 1 and "RuntimeError: disk on fire" in proc.stderr
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    saved = torch.load(run / "checkpoints" / "on_exception.ckpt", weights_only=True)
    assert saved["global_step"] == 4  # last.ckpt (every 3 steps) holds step 3: this is newer
    proc = command("train", *args)
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
    args = [*CLI, "trainer.max_epochs=2",
            *_once(tmp_path, "SignalAt", "step=5", "signal_name=SIGUSR1")]  # fmt: skip
    proc = cli("train", *args, env=slurm)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    run = tmp_path / "outputs" / "train" / "runs" / "job"
    assert torch.load(run / "hpc_ckpt_1.ckpt", weights_only=True)["global_step"] == 5
    proc = command("train", *args, env={**slurm, "SLURM_RESTART_COUNT": "1"})
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


def test_skip_mode_also_skips_a_nonfinite_gradient_with_a_finite_loss(compose, caplog):
    cfg = compose(*BASE, "trainer.max_epochs=1", "callbacks.nonfinite.policy=skip",
                  "callbacks.nonfinite.max_skips=1", *_with("NanGradAt", [2]))  # fmt: skip
    with caplog.at_level("WARNING"):
        metrics, objs = train(cfg)
    assert "non-finite gradient at step 2: batch skipped (1 of 1 allowed)" in caplog.text
    assert all(torch.isfinite(p).all() for p in objs["model"].parameters())
    # The count is a result of the run (a diverging lecture sweep shows it in metrics.json).
    assert metrics["train/nonfinite_skipped"] == 1
    assert checkpoint.read_metrics(cfg.paths.output_dir)["train/nonfinite_skipped"] == 1


def test_skip_mode_skips_up_to_k_nonfinite_batches_then_stops(compose, caplog, tmp_path):
    ok = compose(
        *BASE,
        "trainer.max_epochs=2",
        "callbacks.nonfinite.policy=skip",
        "callbacks.nonfinite.max_skips=2",
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
        "callbacks.nonfinite.policy=skip",
        "callbacks.nonfinite.max_skips=1",
        *_with("NanLossAt", [2, 3]),
        f"paths.output_dir={tmp_path / 'over'}",  # a run folder of its own
    )
    with pytest.raises(NonFiniteError, match=r"non-finite loss \(nan\) at step 3"):
        train(over)


def test_ckpt_path_last_without_a_checkpoint_says_it_starts_fresh(compose, caplog):
    from cnnlab.training.resume import resume_path

    with caplog.at_level("WARNING"):
        assert resume_path(compose(*BASE, "ckpt_path=last", "run_id=new")) is None
    assert "ckpt_path=last: no checkpoint in" in caplog.text and "starting fresh" in caplog.text


def test_best_and_last_of_one_step_share_one_write(tmp_path):
    from cnnlab.core.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    state = {"epoch": 0, "global_step": 5, "w": torch.ones(3)}
    io.save_checkpoint(state, tmp_path / "best.ckpt")
    io.save_checkpoint({**state, "note": "last"}, tmp_path / "last.ckpt")
    assert (tmp_path / "best.ckpt").stat().st_ino == (tmp_path / "last.ckpt").stat().st_ino
    io.save_checkpoint({"epoch": 1, "global_step": 10, "w": torch.zeros(3)}, tmp_path / "last.ckpt")
    assert torch.equal(torch.load(tmp_path / "best.ckpt", weights_only=True)["w"], torch.ones(3))
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_fp16_gradient_overflow_is_left_to_the_grad_scaler():
    """16-mixed: the first steps' gradients routinely overflow at the initial loss scale; the
    GradScaler skips those steps itself, so the guard must not stop the run (policy=stop)."""
    from types import SimpleNamespace

    from cnnlab.callbacks.nonfinite import NonFiniteGuard

    net = torch.nn.Linear(2, 2)
    net.weight.grad = torch.full_like(net.weight, float("inf"))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    guard = NonFiniteGuard(policy="stop")
    plain = SimpleNamespace(global_step=0, precision_plugin=SimpleNamespace())
    with pytest.raises(NonFiniteError, match="non-finite gradient at step 0"):
        guard.on_before_optimizer_step(plain, net, opt)
    scaled = SimpleNamespace(global_step=0, precision_plugin=SimpleNamespace(scaler=object()))
    guard.on_before_optimizer_step(scaled, net, opt)  # no error: the scaler's job
    assert torch.isinf(net.weight.grad).all()  # and the guard left the gradients to it


def test_a_bad_step_changes_no_weight_and_no_optimizer_state_on_the_fused_path(compose, caplog):
    """The default AdamW is fused: the guard hands it the bad-step flag as `found_inf` and the
    step leaves weights, moments and step counts as they were, without a host read."""
    from tests.probes import StateAround

    cfg = compose(*BASE, "trainer.max_epochs=1", "callbacks.nonfinite.policy=skip",
                  "callbacks.nonfinite.max_skips=1", *_with("NanGradAt", [2]),
                  "+callbacks.probe._target_=tests.probes.StateAround",
                  "+callbacks.probe.step=2")  # fmt: skip
    with caplog.at_level("WARNING"):
        _, objs = train(cfg)
    guard = next(c for c in objs["trainer"].callbacks if isinstance(c, NonFiniteGuard))
    assert guard.on_device and guard.skipped == 1
    assert "non-finite gradient at step 2: batch skipped (1 of 1 allowed)" in caplog.text
    probe = next(c for c in objs["trainer"].callbacks if isinstance(c, StateAround))
    assert probe.before.keys() == probe.after.keys()
    assert any(k.startswith("opt.") and k.endswith(".step") for k in probe.before)
    unchanged = [k for k in probe.before if torch.equal(probe.before[k], probe.after[k])]
    assert sorted(unchanged) == sorted(probe.before), set(probe.before) - set(unchanged)


@pytest.mark.slow
def test_the_guard_works_with_a_compiled_network(compose, caplog):
    cfg = compose(*BASE, "trainer.max_epochs=1", "module.compile=true",
                  "callbacks.nonfinite.policy=skip", "callbacks.nonfinite.max_skips=1",
                  *_with("NanLossAt", [2]))  # fmt: skip
    with caplog.at_level("WARNING"):
        _, objs = train(cfg)
    assert "non-finite loss at step 2: batch skipped (1 of 1 allowed)" in caplog.text
    assert all(torch.isfinite(p).all() for p in objs["model"].parameters())

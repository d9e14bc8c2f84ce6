"""The command line as a user types it: bad input fails in one line; multirun makes folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.faults import IMPORT_GATE


def _checkpoints(root: Path) -> list[Path]:
    return list(root.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs"),
        ("model=nope", "valid options: alexnet, alexnet_tv, convnet"),
        ("data=cifar10", "no dataset files in"),
        ("max_epoch=3", "max_epoch"),
        ("data.batch_size=0", "data.batch_size=0 is out of range; valid: a whole number ≥ 1"),
        ("data.batch_size=-4", "data.batch_size=-4 is out of range; valid: a whole number ≥ 1"),
        ("optimizer.lr=-1", "optimizer.lr=-1 is out of range; valid: a number > 0"),
        (
            "module.label_smoothing=1.5",
            "module.label_smoothing=1.5 is out of range; valid: in [0, 1)",
        ),
        ("data.num_workers=-2", "data.num_workers=-2 is out of range; valid: a whole number ≥ 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is out of range"),
        ("trainer.precision=17", "trainer.precision=17 is out of range; valid: 64-true, 32-true"),
        ("augment=mixup_cutmix augment.mix.prob=2", "augment.mix.prob=2 is out of range"),
        (
            "+callbacks.nan._target_=tests.faults.NanLossAt +callbacks.nan.steps=[1]",
            "non-finite loss (nan) at step",
        ),
        ("optimizer.lr=20", "optimizer.lr=20 is out of range; valid: a number > 0 and ≤ 10"),
        ("optimizer.lr=inf", "optimizer.lr=inf is out of range"),
        ("optimizer.lr=nan", "optimizer.lr=nan is out of range"),
        ("optimizer.lr=1e308", "optimizer.lr=1e+308 is out of range"),
        ("optimizer.weight_decay=inf", "optimizer.weight_decay=inf is out of range; valid: a"),
        ("trainer.accelerator=cpu trainer.devices=4096", "asks for 4096 CPU devices, but this"),
        ("data.image_size=3", "data.image_size=3 is out of range; valid: a whole number of pix"),
        ("data.image_size=100000", "data.image_size=100000 is out of range; valid: a whole"),
        ("data.input_size=2", "data.input_size=2 is below this model's minimum input (4 px"),
        (
            "callbacks.model_checkpoint.monitor=val/typo",
            "callbacks.model_checkpoint.monitor='val/typo' is not a metric cnnlab logs; valid: "
            "val/loss, val/acc",
        ),
        ("scheduler=plateau scheduler.monitor=loss", "scheduler.monitor='loss' is not a metric"),
        ("augment=randaugment augment.sample.magnitude=50", "augment.sample.magnitude=50 is out"),
        ("scheduler=cosine scheduler.warmup_fraction=1.5", "scheduler.warmup_fraction=1.5 is out"),
        ("test_ckpt=middle", "test_ckpt='middle' is not valid; choose one of: best, last"),
    ],
)
def test_bad_input_exits_1_with_one_line(command, tmp_path, override, expect):
    empty = tmp_path / "empty"
    proc = command("train", "trainer.max_epochs=1", f"paths.data_dir={empty}", *override.split())
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expect in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr  # nothing before it
    assert _checkpoints(tmp_path) == []
    refused = "non-finite" not in expect  # that one trained a step: its folder keeps the log
    runs = list((tmp_path / "outputs").rglob(".hydra")) if (tmp_path / "outputs").exists() else []
    assert not runs if refused else len(runs) == 1  # a refused config starts no run folder
    assert not (empty / "cifar10").exists()  # a failed download leaves no empty folder


@pytest.mark.parametrize(
    "override", ["data.image_size=100000", "optimizer.lr=inf", "trainer.devices=4096"]
)
def test_values_are_refused_before_torch_is_imported(tmp_path, override):
    gated = subprocess.run(  # importing torch fails in this process: the refusal came first
        [
            sys.executable,
            "-c",
            IMPORT_GATE,
            "cnnlab.commands.train",
            "trainer.accelerator=cpu",
            override,
        ],
        cwd=REPO,
        env={**os.environ, "CNNLAB_ROOT": str(tmp_path), "GATE_REFUSE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = gated.stderr.strip().splitlines()
    assert gated.returncode == 1 and len(lines) == 1, gated.stderr[-2000:]
    assert lines[0].startswith(f"error: {override.split('=')[0]}=")
    assert not (tmp_path / "outputs").exists()  # no run folder, no empty parents


def test_launcher_slurm_without_slurm_is_one_line(command):
    proc = command("train", "-m", "launcher=slurm", "debug=test", "data=fake")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert "launcher=slurm needs SLURM" in errors[0] and "launcher=submitit_local" in errors[0]


def test_eval_on_data_with_another_class_count_is_one_line(command, quick):
    from cnnlab.commands.train import train

    cfg = quick("data=fake", "data.num_classes=5")
    train(cfg)
    ckpt = f"ckpt_path={cfg.paths.output_dir}/checkpoints/last.ckpt"
    proc = command("eval", ckpt, "data=mnist_sample", "trainer.accelerator=cpu")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert "predicts 5 classes, but data=mnist_sample has 10" in errors[0]


def test_eval_needs_ckpt_path(command):
    proc = command("eval")
    assert proc.returncode == 1
    assert "ckpt_path" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_refuses_a_truncated_checkpoint(command, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    proc = command("eval", f"ckpt_path={bad}")
    assert proc.returncode == 1 and f"{bad} is truncated or not a checkpoint" in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "(PytorchStreamReader failed reading zip archive: " in line and line.endswith(")")
    assert "internal miniz error" not in line  # torch's advice after the reason is dropped


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


def test_a_users_callback_may_log_the_metric_it_monitors(compose):
    """A callback from the user's own package can log metrics cnnlab does not know: the monitor
    check then stands aside (cnnlab's own configuration is still checked)."""
    from cnnlab.cli.schema import validate
    from cnnlab.core.errors import UserError

    mine = [
        "callbacks.model_checkpoint.monitor=val/my_score",
        "+callbacks.mine._target_=mypkg.Score",
    ]
    validate(compose(*mine))  # no error
    with pytest.raises(UserError, match="val/my_score' is not a metric cnnlab logs"):
        validate(compose(mine[0]))


def test_a_torchvision_built_for_another_torch_is_one_line_and_no_run_folder(cli, tmp_path):
    """pip upgrading torch alone leaves a torchvision that fails on import inside its own
    package (`operator torchvision::nms does not exist`); a stand-in on PYTHONPATH fails the same
    way (the real one cannot be broken here)."""
    stand_in = tmp_path / "broken" / "torchvision"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(
        'raise RuntimeError("operator torchvision::nms does not exist")\n'
    )
    proc = cli("train", "trainer.max_epochs=1", env={"PYTHONPATH": str(stand_in.parent)})
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: torchvision cannot be loaded (operator torchvision::nms does "
                           "not exist; torch ")  # fmt: skip
    assert line.endswith("must be a matching pair, e.g. pip install --upgrade torch torchvision")
    assert not (tmp_path / "outputs").exists()  # refused before anything ran: no run folder


def test_an_error_raised_inside_a_working_torchvision_is_not_called_a_broken_install():
    import torch
    from torchvision.transforms import v2

    from cnnlab.cli.runner import broken_install

    with pytest.raises(Exception) as raised:  # a bad size: the user's input, not the install
        v2.Resize(-5)(torch.zeros(1, 3, 8, 8))
    assert broken_install(raised.value) is None
    assert broken_install(RuntimeError("operator torchvision::nms does not exist")) is not None

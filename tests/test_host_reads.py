"""The training step never asks the device for a value: 0 stalling host reads on every step that
logs nothing and at most 2 on a logging step (the loggers' own, and the non-finite guard's),
for the default recipe and the configurations users combine with it."""

from __future__ import annotations

import pytest
import torch

from cnnlab.commands.train import train
from tests.host_reads import HostReads

# 24 steps of 10 logging steps' spacing (log_every_n_steps=10): 21 quiet steps and 3 that log.
SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=24", "trainer.limit_val_batches=2",
         "test=false", "+callbacks.reads._target_=tests.host_reads.HostReads"]  # fmt: skip
GPU_CHECK = ["optimizer=sgd", "scheduler=none", "callbacks=[none,nonfinite]", "logger=none",
             "callbacks.nonfinite.policy=skip", "callbacks.nonfinite.max_skips=1000",
             "augment=none"]  # fmt: skip
CONFIGS = {
    "default recipe": [],
    "callbacks=none": ["callbacks=none"],
    "logger=mlflow": ["logger=mlflow"],
    "ema": ["callbacks=[default,ema]"],
    "nonfinite skip": ["callbacks.nonfinite.policy=skip", "callbacks.nonfinite.max_skips=3"],
    "nonfinite stop": ["callbacks.nonfinite.policy=stop"],
    "data.balance=loss": ["data.balance=loss"],
    "augment=mixup_cutmix": ["augment=mixup_cutmix"],
    "freeze=gradual": ["model=resnet18", "freeze=gradual", "data.image_size=32"],
    "the GPU check's": GPU_CHECK,
}


def _counted(compose, tmp_path, overrides) -> HostReads:
    extra = (
        [f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/m.db"]
        if "logger=mlflow" in overrides
        else []
    )
    _, objs = train(compose(*SHORT, *overrides, *extra))
    return next(c for c in objs["trainer"].callbacks if isinstance(c, HostReads))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_no_stalling_read_on_a_quiet_step_and_at_most_two_on_a_logging_step(
    compose, tmp_path, name
):
    reads = _counted(compose, tmp_path, CONFIGS[name])
    quiet = [s for s in reads.steps if not s.logs]
    assert len(reads.steps) == 24 and len(quiet) >= 20, reads.table()
    assert all(not s.stalling for s in quiet), reads.table()
    assert all(len(s.stalling) <= 2 for s in reads.steps if s.logs), reads.table()


def test_the_counter_sees_a_read_in_the_step_and_where_it_came_from(compose, tmp_path):
    """The counter itself: a host read placed in every training step is counted on every
    step, stalling, with its source line (so a passing test above means something)."""
    reads = _counted(
        compose, tmp_path, ["data=fake", "+callbacks.bad._target_=tests.faults.ReadEveryStep"]
    )
    assert all(len(s.stalling) >= 1 for s in reads.steps)
    assert all(
        any("faults.py" in r.where and r.what == "item" for r in s.stalling) for s in reads.steps
    )


def test_ema_updates_the_average_exactly_as_torchs_averaged_model():
    from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn, get_ema_multi_avg_fn

    from cnnlab.callbacks.ema import EMA

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                              torch.nn.Linear(288, 4))  # fmt: skip
    reference = AveragedModel(net, use_buffers=True, multi_avg_fn=get_ema_multi_avg_fn(0.99))
    ema = EMA(decay=0.99)
    ema._average_model = AveragedModel(net, use_buffers=True, avg_fn=get_ema_avg_fn(0.99))
    for _ in range(5):
        net(torch.randn(4, 3, 8, 8)).sum().backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
                p.grad = None
        reference.update_parameters(net)
        ema.update(net)
    a, b = reference.state_dict(), ema._average_model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

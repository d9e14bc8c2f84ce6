"""The training loss and accuracies per epoch: kept on the device step by step, summed in folds,
read once. The totals must equal a direct count, whatever the fold boundaries, batch sizes and
skipped (non-finite) steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab.training.module as module_file
from cnnlab.training.module import ClassifierModule
from cnnlab.training.param_groups import GroupPlan


def test_epoch_totals_equal_a_direct_count_across_folds(monkeypatch):
    monkeypatch.setattr(module_file, "FOLD", 3)  # 7 steps: folds of 3, 3, then the epoch's end
    module = ClassifierModule(nn.Identity(), torch.optim.SGD, groups=GroupPlan("fc", 0.1, 0.0),
                              num_classes=6, label_smoothing=0.0)  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    expected = torch.zeros(4, dtype=torch.float64)  # loss × images, top-1, top-5, images
    for step, size in enumerate([8, 8, 8, 5, 8, 8, 3]):
        logits = torch.randn(size, 6, generator=gen)
        targets = torch.randint(0, 6, (size,), generator=gen)
        loss = torch.tensor(float("nan")) if step == 4 else nn.functional.cross_entropy(
            logits, targets)  # fmt: skip
        module._count(loss, logits, targets)
        if step == 4:
            continue  # a skipped step counts nothing
        top5 = logits.topk(5, dim=1).indices
        expected += torch.tensor([float(loss) * size, (top5[:, 0] == targets).sum(),
                                  (top5 == targets[:, None]).any(1).sum(), size],
                                 dtype=torch.float64)  # fmt: skip
    assert len(module._train_steps) == 1  # two folds done on the way
    module._fold_train_steps()
    assert module._train_totals.tolist() == pytest.approx(expected.tolist(), rel=1e-6)

"""The learning-rate range test's curve and suggestion: debiased smoothing (the first point is
the first loss, not half of it) and the steepest fall per decade of rate before divergence."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from cnnlab.training.lr_search import _warn_if_doubtful, smoothed, steepest


def test_smoothing_starts_at_the_first_loss_and_keeps_a_constant_constant():
    assert smoothed([2.3])[0] == pytest.approx(2.3)  # Lightning's first point: 2.3 / 1.98
    assert smoothed([2.3] * 50) == pytest.approx([2.3] * 50)
    out = smoothed([2.0, float("nan"), 2.0])
    assert out[0] == pytest.approx(2.0) and out[1] == pytest.approx(2.0)
    assert math.isnan(smoothed([float("nan"), 1.0])[0])


def _range_test_curve(seed: int = 0):
    """A range test's shape: flat (with noise) at tiny rates, falling from 1e-3 to 5e-2, then
    diverging; 100 rates from 1e-6 to 1, as the tuner steps them."""
    lrs = np.logspace(-6, 0, 100)
    decade = np.log10(lrs)
    losses = 2.3 - 0.25 * np.clip(decade + 3, 0, 1.7) ** 2 / 1.7
    losses[decade > -1.2] += 8 * (decade[decade > -1.2] + 1.2)  # divergence
    losses += np.random.default_rng(seed).normal(0, 1e-3, 100)
    return list(lrs), list(losses)


def test_steepest_is_in_the_fall_not_the_flat_noisy_start():
    lrs, losses = _range_test_curve()
    index = steepest(lrs, losses)
    assert 1e-3 < lrs[index] < 6e-2
    # The slope per unit of rate (Lightning's suggestion) lands in the flat start instead.
    per_rate = np.gradient(np.array(losses[10:-1]), np.array(lrs[10:-1]))
    assert lrs[10 + int(np.argmin(per_rate))] < 1e-4


def test_no_fall_no_suggestion():
    lrs = list(np.logspace(-6, 0, 50))
    assert steepest(lrs, [2.3 + 0.01 * i for i in range(50)]) is None
    assert steepest(lrs[:5], [2.3, 2.2, 2.1, 2.0, 1.9]) is None  # too few points past the skip


def test_doubtful_suggestions_are_said(caplog):
    trainer = type("T", (), {"num_training_batches": 10})()
    with caplog.at_level(logging.WARNING):
        _warn_if_doubtful(1.4e-5, trainer, steps=100)
    text = caplog.text
    assert "ran 100 steps over 10 training batches (10 passes)" in text
    assert "suggests lr 1.4e-05, below 0.0001" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _warn_if_doubtful(3e-3, type("T", (), {"num_training_batches": 70})(), steps=100)
    assert caplog.text == ""


def test_the_range_test_runs_its_steps_past_the_recipes_epochs(quick, tmp_path, caplog):
    """One epoch of 600 images is 10 batches: the test goes on past it, up to its 100 steps or
    until the loss diverges, and says how many it ran (it used to stop with the epoch and find
    no falling loss in what it said were 100 steps)."""
    import logging
    import re

    from cnnlab.training import lr_search

    cfg = quick("data.train_limit=600", "trainer.max_epochs=1")  # and onecycle, the default
    with caplog.at_level(logging.INFO, logger="cnnlab.training.lr_search"):
        suggestion = lr_search.search(cfg, tmp_path)
    ran = int(re.search(r"learning-rate range test: (\d+) of 100 steps", caplog.text).group(1))
    assert ran > 10  # past the one epoch; it stops early only where the loss diverges
    assert 1e-6 < suggestion < 1.0 and (tmp_path / "lr_find.png").is_file()

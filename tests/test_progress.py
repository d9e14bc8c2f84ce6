"""The throttled progress bar does its per-batch work at most every min_interval_s."""

from __future__ import annotations

from types import SimpleNamespace

from lightning.pytorch.callbacks import RichProgressBar

from cnnlab.callbacks import progress
from cnnlab.callbacks.progress import ThrottledRichProgressBar


def test_batches_closer_than_the_interval_skip_progress_work(monkeypatch):
    calls = []
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end", lambda self, *a: calls.append(a[-1]))
    monkeypatch.setattr(ThrottledRichProgressBar, "total_train_batches", property(lambda self: 10))
    clock = iter([0.0, 0.1, 0.2, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.15])  # seconds, per batch
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    bar = ThrottledRichProgressBar(min_interval_s=0.5)
    trainer = SimpleNamespace()
    for batch_idx in range(10):
        bar.on_train_batch_end(trainer, None, None, None, batch_idx)
    # the first batch, the first one 0.5 s after it, the next 0.5 s later, and the epoch's last
    assert calls == [0, 3, 8, 9]

"""Callbacks the benchmark adds to cnnlab runs (importable by Hydra as benchmarks.timing.*)."""

from __future__ import annotations

import time

import lightning as L


def mark(name: str) -> None:
    """A moment for the bench (benchmarks/sliced.py turns it into this process's own seconds)."""
    print(f"bench_mark {name} {time.time():.6f}", flush=True)


class FitTimer(L.Callback):
    """Wall time from the first training batch to the end of fit (all callbacks included), and
    of the training steps alone; printed as bench marks and kept as attributes:
    fit_start/fit_end around the whole fit, epoch_start/steps_end around each epoch's steps."""

    def __init__(self):
        self.first_step: float | None = None
        self.fit_seconds: float | None = None
        self.train_seconds = 0.0  # the training steps only: from epoch start to its last batch
        self._start = self._epoch_start = self._last_batch_end = 0.0
        self._last_batch_end_wall = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()
        mark("fit_start")
        print(f"bench_images {len(trainer.datamodule.train_set) * trainer.max_epochs}")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()
        mark("epoch_start")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last_batch_end = time.perf_counter()
        self._last_batch_end_wall = time.time()

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:  # validation runs after the epoch's last batch
            self.train_seconds += self._last_batch_end - self._epoch_start
            print(f"bench_mark steps_end {self._last_batch_end_wall:.6f}", flush=True)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first_step is None:
            self.first_step = time.perf_counter()
            mark("first_step")

    def on_train_end(self, trainer, pl_module) -> None:
        self.fit_seconds = time.perf_counter() - self._start
        mark("fit_end")

"""Callbacks the benchmark adds to cnnlab runs (importable by Hydra as benchmarks.timing.*)."""

from __future__ import annotations

import os
import time

import lightning as L

PROCESS_START = float(os.environ.get("CNNLAB_BENCH_T0", time.time()))


class FitTimer(L.Callback):
    """Wall time from the first training batch to the end of fit (all callbacks included)."""

    def __init__(self):
        self.first_step: float | None = None
        self.fit_seconds: float | None = None
        self.train_seconds = 0.0  # the training steps only: from epoch start to its last batch
        self._start = self._epoch_start = self._last_batch_end = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last_batch_end = time.perf_counter()

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:  # validation runs after the epoch's last batch
            self.train_seconds += self._last_batch_end - self._epoch_start

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first_step is None:
            self.first_step = time.time() - PROCESS_START
            print(f"first_step_s={self.first_step:.2f}", flush=True)

    def on_train_end(self, trainer, pl_module) -> None:
        self.fit_seconds = time.perf_counter() - self._start

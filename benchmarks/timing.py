"""Callbacks the benchmark adds to cnnlab runs (importable by Hydra as benchmarks.timing.*)."""

from __future__ import annotations

import time

import lightning as L


def mark(name: str) -> None:
    """A moment for the bench (benchmarks/sliced.py turns it into this process's own seconds)."""
    print(f"bench_mark {name} {time.time():.6f}", flush=True)


class FitTimer(L.Callback):
    """Marks for the bench: fit_start/fit_end around the whole fit (all callbacks included),
    epoch_start/steps_end around each epoch's training steps, first_step; and fit_seconds for
    the in-process scaling bench."""

    def __init__(self):
        self.fit_seconds: float | None = None
        self._start = 0.0
        self._first = True
        self._last_batch_end = 0.0  # time.time() of the latest training batch's end

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()
        mark("fit_start")
        print(f"bench_images {len(trainer.datamodule.train_set) * trainer.max_epochs}")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        mark("epoch_start")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._first:
            self._first = False
            mark("first_step")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last_batch_end = time.time()

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:  # validation runs after the epoch's last batch
            print(f"bench_mark steps_end {self._last_batch_end:.6f}", flush=True)

    def on_train_end(self, trainer, pl_module) -> None:
        self.fit_seconds = time.perf_counter() - self._start
        mark("fit_end")

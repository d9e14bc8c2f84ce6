"""Lightning's Rich progress bar, redrawn at most every `min_interval_s` seconds, in the training
loop's own thread.

Why: Lightning's RichProgressBar updates its tasks and metrics after every batch (0.2 ms per
batch here, SimpleProfiler) and redraws from a helper thread. Here a batch that comes sooner
than `min_interval_s` after the last redraw skips all progress work (as tqdm's `mininterval`
does), and the redraw happens in the loop's thread, so no second thread takes the GIL.
"""

from __future__ import annotations

import math
import time

from lightning.pytorch.callbacks import RichProgressBar


class ThrottledRichProgressBar(RichProgressBar):
    def __init__(self, min_interval_s: float = 0.5, **kwargs):
        # refresh_rate stays Lightning's: it is also how often Rich's helper thread wakes, and
        # how long closing the bar may wait for it (1 / rate seconds).
        super().__init__(**kwargs)
        self.min_interval_s = min_interval_s
        self._last_draw = -math.inf

    def refresh(self, hard: bool = False) -> None:
        if self.progress:
            self.progress.refresh()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        last = batch_idx + 1 >= self.total_train_batches
        if now - self._last_draw < self.min_interval_s and not last:
            return
        self._last_draw = now
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

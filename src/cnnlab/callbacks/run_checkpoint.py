"""ModelCheckpoint whose last.ckpt really is the latest epoch.

Lightning 2.6 writes last.ckpt only at a step where it also wrote a top-k (best) checkpoint, so
after an epoch that did not improve val/acc, last.ckpt still holds the last *improving* epoch: a
resume would redo epochs, and a finished run would not look finished. This writes it at the end
of every epoch too.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class RunCheckpoint(ModelCheckpoint):
    def _also_last(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._also_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._also_last(trainer)

"""Log a grid of augmented training images (mixed pairs too) when training starts (every logger
that shows images)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from cnnlab.analysis.preview import augmented_batch, picture
from cnnlab.core.media import Media


class AugmentationGrid(L.Callback):
    def __init__(self, count: int = 32):
        self.count = count

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        media = Media(trainer.loggers)
        if media.unavailable():
            return
        import torch

        state = torch.get_rng_state()  # the preview must not shift the training run's randomness
        images, targets = augmented_batch(trainer.datamodule, count=self.count)
        torch.set_rng_state(state)
        image = picture(trainer.datamodule, images.cpu(), targets.cpu())
        media.image("data/augmented_train_batch", image, 0)

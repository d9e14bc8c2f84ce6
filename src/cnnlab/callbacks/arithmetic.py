"""Log the model's layer table (shapes, parameters, memory, FLOPs) once, when training starts, to
every logger that shows text (TensorBoard's Text tab, an MLflow artifact, a W&B table)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from cnnlab.analysis.arithmetic import analyze
from cnnlab.analysis.summary_format import markdown
from cnnlab.core.media import Media


class ArithmeticSummary(L.Callback):
    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        media = Media(trainer.loggers)
        if media.unavailable():
            return
        dm = trainer.datamodule
        report = analyze(pl_module.net, (dm.in_channels, dm.input_size, dm.input_size))
        text = markdown(report, dm.batch_size)
        media.text("model/arithmetic", text, 0)

"""Log the model's layer table (shapes, parameters, memory, FLOPs) to TensorBoard's Text tab once,
when training starts."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from cnnlab.analysis.arithmetic import analyze
from cnnlab.analysis.summary_format import markdown


class ArithmeticSummary(L.Callback):
    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers:
            return
        dm = trainer.datamodule
        report = analyze(pl_module.net, (dm.in_channels, dm.input_size, dm.input_size))
        text = markdown(report, dm.batch_size)
        for logger in loggers:
            logger.experiment.add_text("model/arithmetic", text, global_step=0)

"""Log the run's hyperparameters once, tied to real metric names, for TensorBoard's HPARAMS tab.

Lightning's default logs a placeholder `hp_metric = -1`. The HPARAMS tab shows, for each metric
registered here, the last value of the scalar with that tag in the same run, so registering
`val/acc` and `test/acc` makes it show the run's real final accuracies.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optimizer": {"lr": 0.1}} → {"optimizer/lr": 0.1}; lists become strings."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            flat[name] = "null" if value is None else value
        else:
            flat[name] = str(value)
    return flat


class HparamsWithMetrics(L.Callback):
    def __init__(self, metrics: list[str]):
        self.metrics = list(metrics)

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        config = pl_module.hparams.get("config", {})
        params = flatten(
            {k: v for k, v in config.items() if k not in ("paths", "callbacks", "logger")}
        )
        params["model/params"] = sum(p.numel() for p in pl_module.parameters())
        for logger in trainer.loggers:
            logger.log_hyperparams(params)  # hparams.yaml / CSV; TensorBoard writes no summary here
            if isinstance(logger, TensorBoardLogger):
                # The session summary only names the metrics; no placeholder scalar is written, so
                # the HPARAMS tab reads the real values logged later under the same tags.
                writer = logger.experiment._get_file_writer()
                for summary in hparams(params, {m: 0.0 for m in self.metrics}):
                    writer.add_summary(summary)

"""Log the run's hyperparameters once, the keys people compare first, to every logger's comparison
view (TensorBoard HPARAMS, MLflow params, W&B config), tied to real metric names.

Lightning's default logs a placeholder `hp_metric = -1`. TensorBoard's HPARAMS tab shows, for each
metric registered here, the last value of the scalar with that tag in the same run, so
registering `val/acc` and `test/acc` makes it show the run's real final accuracies; MLflow and
W&B keep the last value of every metric anyway. TensorBoard also gets a custom-scalars layout:
train and validation loss on one chart, accuracy on another.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams

INTERNAL = ("_target_", "_partial_", "_convert_", "_recursive_")
# What a comparison of runs is about, first: the groups chosen, then these values.
GROUPS = ("model", "data", "optimizer", "scheduler", "augment", "freeze", "transfer")
FIRST = ("optimizer/lr", "data/batch_size", "trainer/max_epochs", "seed")
LAYOUT = {
    "learning curves": {
        "loss (train, val)": ["Multiline", ["^train/loss$", "^val/loss$"]],
        "accuracy (train, val)": ["Multiline", ["^train/acc$", "^val/acc$"]],
        "learning rate": ["Multiline", ["^lr-"]],
    }
}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optimizer": {"lr": 0.1}} → {"optimizer/lr": 0.1}; lists become strings; Hydra's
    `_target_`-style internals are left out."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if key in INTERNAL:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            flat[name] = "null" if value is None else value
        else:
            flat[name] = str(value)
    return flat


def _choices() -> dict[str, str]:
    """The config group options this run was composed from (model=convnet, …); {} outside Hydra
    (DDP's other ranks, tests composing by hand)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choices = HydraConfig.get().runtime.choices
    except (ImportError, ValueError):
        return {}
    return {g: str(choices[g]) for g in GROUPS if choices.get(g) not in (None, "null")}


def compared(flat: dict[str, Any], params_count: int) -> dict[str, Any]:
    """The keys people compare runs by (HPARAMS' columns): the group choices, lr, batch, epochs,
    seed, parameters."""
    return {**_choices(), **{k: flat[k] for k in FIRST if k in flat}, "model/params": params_count}


def ordered(config: dict[str, Any], params_count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the compared keys, all keys with the compared ones first and the rest alphabetically);
    paths, callbacks and logger settings left out."""
    flat = flatten({k: v for k, v in config.items() if k not in ("paths", "callbacks", "logger")})
    first = compared(flat, params_count)
    return first, {**first, **{k: flat[k] for k in sorted(flat) if k not in first}}


class HparamsWithMetrics(L.Callback):
    def __init__(self, metrics: list[str]):
        self.metrics = list(metrics)

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        count = sum(p.numel() for p in pl_module.parameters())
        shown, params = ordered(pl_module.hparams.get("config", {}), count)
        for logger in trainer.loggers:
            logger.log_hyperparams(params)  # hparams.yaml, MLflow params, W&B config
            if isinstance(logger, TensorBoardLogger):
                # The session summary only names the metrics. Lightning's public log_hyperparams
                # would also log each at 0 at step 0, a false first point on every curve; through
                # the writer's file no placeholder is written, so the HPARAMS tab reads the real
                # values logged later under the same tags. Columns: only the compared keys (the
                # whole config is in hparams.yaml and the Text tab).
                writer = logger.experiment._get_file_writer()
                for summary in hparams(shown, {m: 0.0 for m in self.metrics}):
                    writer.add_summary(summary)
                logger.experiment.add_custom_scalars(LAYOUT)

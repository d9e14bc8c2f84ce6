"""The one place that turns configs into objects (`hydra.utils.instantiate` is called only here).

`train`, `eval` and the tests build the same graph through these functions:
data → network → ClassifierModule; callbacks, loggers → Trainer.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from cnnlab.data.datamodule import ClassificationDataModule
from cnnlab.errors import UserError
from cnnlab.module import ClassifierModule


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain containers: safe in a weights_only checkpoint."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)


def _instantiate(node: DictConfig, what: str, **kwargs):
    try:
        return instantiate(node, **kwargs)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - report which group failed, with the cause
        cause = err.__cause__ or err
        if isinstance(cause, UserError):
            raise cause from None
        raise UserError(f"could not build {what}: {type(cause).__name__}: {cause}") from err


def datamodule(data_cfg: DictConfig) -> ClassificationDataModule:
    return _instantiate(data_cfg, "data")


def network(model_cfg: DictConfig, data_cfg: DictConfig | None = None) -> nn.Module:
    label = model_cfg.get("name") or model_cfg.net._target_.rpartition(".")[2]
    minimum = model_cfg.get("min_input_size") or 1
    if data_cfg is not None and data_cfg.input_size < minimum:
        raise UserError(f"model {label} needs images of at least {minimum}×{minimum} pixels, but "
                        f"data.input_size={data_cfg.input_size}; drop that override or raise it")
    return _instantiate(model_cfg.net, f"model ({label})")


def classifier(cfg: DictConfig, net: nn.Module) -> ClassifierModule:
    return ClassifierModule(
        net=net,
        optimizer=_instantiate(cfg.optimizer, "optimizer"),
        scheduler=_instantiate(cfg.scheduler, "scheduler") if cfg.get("scheduler") else None,
        num_classes=cfg.data.num_classes,
        label_smoothing=cfg.get("label_smoothing", 0.0),
        config=plain(cfg),
    )


def callbacks(cfg: DictConfig) -> list[L.Callback]:
    group = cfg.get("callbacks") or {}
    return [_instantiate(c, f"callbacks.{k}") for k, c in group.items() if c and "_target_" in c]


def loggers(cfg: DictConfig) -> list:
    group = cfg.get("logger") or {}
    return [_instantiate(c, f"logger.{k}") for k, c in group.items() if c and "_target_" in c]


def trainer(cfg: DictConfig, callbacks: list[L.Callback], loggers: list) -> L.Trainer:
    return _instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)

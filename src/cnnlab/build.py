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

from cnnlab import precision
from cnnlab.checkpoint_io import AtomicCheckpointIO
from cnnlab.data.datamodule import ClassificationDataModule
from cnnlab.errors import UserError
from cnnlab.models import weights as weights_file
from cnnlab.models.anatomy import find_head
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
    """The network, with `model.weights` applied: a torchvision weights name is passed to
    torchvision; a file path is loaded here, backbone only."""
    label = model_cfg.get("name") or model_cfg.net._target_.rpartition(".")[2]
    minimum = model_cfg.get("min_input_size") or 1
    if data_cfg is not None and data_cfg.input_size < minimum:
        raise UserError(
            f"model {label} needs images of at least {minimum}×{minimum} pixels, but "
            f"data.input_size={data_cfg.input_size}; drop that override or raise it"
        )
    weights = model_cfg.get("weights")
    from_file = weights_file.is_path(weights)
    if weights and not from_file and "weights" not in model_cfg.net:
        raise UserError(
            f"model.weights={weights!r}: {label} is built from scratch here; give a "
            f"checkpoint or state-dict file, or use a torchvision model"
        )
    overrides = {"weights": None} if from_file and "weights" in model_cfg.net else {}
    net = _instantiate(model_cfg.net, f"model ({label})", **overrides)
    if from_file:
        weights_file.load_backbone(net, str(weights), head_name(model_cfg, net))
    return net


def weights_preprocessing(cfg: DictConfig, dm: ClassificationDataModule) -> None:
    """With torchvision weights and `data.normalize=auto`, normalise as the weights were trained
    (their `transforms()` mean/std) and feed at least their crop size."""
    weights = cfg.model.get("weights")
    if not weights or weights_file.is_path(weights) or cfg.data.get("normalize", "auto") != "auto":
        return
    import torchvision

    tf = torchvision.models.get_model_weights(cfg.model.net.name)[weights].transforms()
    if dm.in_channels == len(tf.mean):
        dm.set_statistics(tf.mean, tf.std)
    else:  # grayscale into an RGB network: the first conv averages RGB, so average the stats
        dm.set_statistics([sum(tf.mean) / 3] * dm.in_channels, [sum(tf.std) / 3] * dm.in_channels)
    dm.input_size = max(dm.input_size, tf.crop_size[0])


def head_name(model_cfg: DictConfig, net: nn.Module) -> str:
    head = model_cfg.get("head") or "auto"
    return find_head(net)[0] if head == "auto" else head


def freeze_strategy(cfg: DictConfig, net: nn.Module) -> L.Callback | None:
    node = (cfg.get("freeze") or {}).get("strategy")
    if not node:
        return None
    return _instantiate(node, "freeze.strategy", head=head_name(cfg.model, net))


def classifier(cfg: DictConfig, net: nn.Module) -> ClassifierModule:
    freeze = cfg.get("freeze") or {}
    return ClassifierModule(
        net=net,
        optimizer=_instantiate(cfg.optimizer, "optimizer"),
        scheduler=_instantiate(cfg.scheduler, "scheduler") if cfg.get("scheduler") else None,
        num_classes=cfg.data.num_classes,
        label_smoothing=cfg.get("label_smoothing", 0.0),
        head=head_name(cfg.model, net),
        backbone_lr_ratio=freeze.get("backbone_lr_ratio", 1.0),
        decay_norm_and_bias=cfg.get("decay_norm_and_bias", False),
        channels_last=cfg.get("channels_last", False),
        compile=cfg.get("compile", False),
        nonfinite=cfg.get("nonfinite", "stop"),
        max_skips=cfg.get("max_skips", 0),
        config=plain(cfg),
    )


def callbacks(cfg: DictConfig) -> list[L.Callback]:
    group = cfg.get("callbacks") or {}
    return [_instantiate(c, f"callbacks.{k}") for k, c in group.items() if c and "_target_" in c]


def loggers(cfg: DictConfig) -> list:
    group = cfg.get("logger") or {}
    return [_instantiate(c, f"logger.{k}") for k, c in group.items() if c and "_target_" in c]


def trainer(cfg: DictConfig, callbacks: list[L.Callback], loggers: list) -> L.Trainer:
    built = _instantiate(
        cfg.trainer,
        "trainer",
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
    )
    precision.warn_if_slow(cfg.trainer.precision, on_cpu=built.strategy.root_device.type == "cpu")
    return built


def restore(stored: dict[str, Any], data_cfg: DictConfig | None = None):
    """The data module and network of a finished run, from the config its checkpoint stores:
    normalised exactly as in training (weights' statistics included), with nothing downloaded
    (the checkpoint holds the trained weights). Returns (run config, datamodule, network)."""
    run_cfg = OmegaConf.create(stored)
    if data_cfg is not None:
        run_cfg.data = data_cfg
    dm = datamodule(run_cfg.data)
    weights_preprocessing(run_cfg, dm)
    run_cfg.model.weights = None
    return run_cfg, dm, network(run_cfg.model, run_cfg.data)

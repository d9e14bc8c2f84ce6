"""The one place that turns configs into objects (`hydra.utils.instantiate` is called only here;
networks come from `models.build`, which `cnnlab.load` also uses and which needs no Hydra).

`train`, `eval` and the tests build the same graph through these functions:
preprocessing → data and network → ClassifierModule; callbacks, loggers → Trainer.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from cnnlab.core.checkpoint_io import AtomicCheckpointIO
from cnnlab.core.errors import UserError, could_not_build
from cnnlab.core.preprocessing import Preprocessing, decide
from cnnlab.data.datamodule import ClassificationDataModule
from cnnlab.models.build import head_name, network, restore_network
from cnnlab.training import precision, rank_watch, step_hooks
from cnnlab.training.loggers import continue_run, missing_package
from cnnlab.training.module import ClassifierModule
from cnnlab.training.param_groups import GroupPlan

# Data-config keys that `preprocessing()` turns into one Preprocessing (not datamodule arguments).
DECIDED_KEYS = ("mean", "std", "input_size", "normalize")
# Optimizer-config keys that the parameter groups read (GroupPlan), not optimizer arguments.
GROUP_KEYS = ("decay_norm_and_bias",)
# The module group of checkpoints written before conf/module/ existed.
DEFAULT_MODULE = {"_target_": "cnnlab.training.module.ClassifierModule"}


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain containers: safe in a weights_only checkpoint."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)


def _instantiate(node: DictConfig, what: str, *, built: dict[str, Any] | None = None, **kwargs):
    """`instantiate(node, **kwargs)`; `built` objects are passed to the constructor as they are
    (Hydra would turn a dataclass argument into a config)."""
    try:
        if built is None:
            return instantiate(node, **kwargs)
        return instantiate(node, _partial_=True, **kwargs)(**built)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - report which group failed, with the cause
        failure = could_not_build(what, err.__cause__ or err)  # Hydra wraps the cause once
        raise failure from (None if failure is err.__cause__ else err)


def preprocessing(cfg: DictConfig) -> Preprocessing:
    """Mean, std and input size for this run: decided once, handed to data and network."""
    return decide(cfg.data, cfg.model)


def _without(node: DictConfig, keys: tuple[str, ...]) -> DictConfig:
    """The node less the keys cnnlab reads itself, for the constructor it names."""
    return OmegaConf.create({k: v for k, v in plain(node).items() if k not in keys})


def datamodule(data_cfg: DictConfig, prep: Preprocessing) -> ClassificationDataModule:
    return _instantiate(_without(data_cfg, DECIDED_KEYS), "data", built={"preprocessing": prep})


def data_and_network(cfg: DictConfig) -> tuple[Preprocessing, ClassificationDataModule, nn.Module]:
    """Preprocessing decided once, then the datamodule and the network built with it."""
    prep = preprocessing(cfg)
    data = datamodule(cfg.data, prep)
    count_classes(cfg, data)
    return prep, data, network(cfg.model, prep)


def count_classes(cfg: DictConfig, data: ClassificationDataModule) -> None:
    """data.num_classes: null is as many classes as the data names (its class folders, its
    ClassLabel, its shards' index), written into the config before the network is built from
    it and the checkpoint stores it. The data is opened once; fit reuses it."""
    if cfg.data.num_classes is None:
        data.setup("fit")
        cfg.data.num_classes = data.num_classes


def freeze_strategy(cfg: DictConfig, net: nn.Module) -> L.Callback | None:
    node = (cfg.get("freeze") or {}).get("strategy")
    if not node:
        return None
    return _instantiate(node, "freeze.strategy", head=head_name(cfg.model, net))


def group_plan(cfg: DictConfig, net: nn.Module, strategy: L.Callback | None) -> GroupPlan:
    """The optimizer's parameter groups, from the config and what the freeze strategy declares
    (`holds_frozen_params`: its frozen parameters must be in the optimizer from the start)."""
    optimizer = cfg.optimizer
    return GroupPlan(
        head=head_name(cfg.model, net),
        lr=float(optimizer.get("lr", 1e-3)),
        weight_decay=float(optimizer.get("weight_decay", 0.0)),
        backbone_lr_ratio=float((cfg.get("freeze") or {}).get("backbone_lr_ratio", 1.0)),
        decay_norm_and_bias=bool(optimizer.get("decay_norm_and_bias", False)),
        include_frozen=bool(getattr(strategy, "holds_frozen_params", False)),
    )


def _module_node(cfg: DictConfig) -> DictConfig:
    return cfg.get("module") or OmegaConf.create(DEFAULT_MODULE)


def classifier(
    cfg: DictConfig, net: nn.Module, strategy: L.Callback | None = None
) -> ClassifierModule:
    built = {
        "net": net,
        "optimizer": _instantiate(_without(cfg.optimizer, GROUP_KEYS), "optimizer"),
        "scheduler": _instantiate(cfg.scheduler, "scheduler") if cfg.get("scheduler") else None,
        "groups": group_plan(cfg, net, strategy),
        "num_classes": cfg.data.num_classes,
        "config": plain(cfg),
    }
    return _instantiate(_module_node(cfg), "module", built=built)


def callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The callbacks group's (the non-finite guard among them)."""
    group = cfg.get("callbacks") or {}
    return [_instantiate(c, f"callbacks.{k}") for k, c in group.items() if c and "_target_" in c]


def loggers(cfg: DictConfig, resume: dict[str, str] | None = None) -> dict[str, Any]:
    """The logger group's loggers by name. `resume`: the tracking runs a checkpoint was logged
    to (logger name → run id, `loggers.TrackingRuns`); those loggers continue them."""
    group = cfg.get("logger") or {}
    built = {}
    for name, node in group.items():
        if node and "_target_" in node:
            run_id = (resume or {}).get(name)
            extra = continue_run(node._target_, run_id) if run_id else {}
            try:
                built[name] = _instantiate(node, f"logger.{name}", **extra)
            except UserError as err:  # a missing package: the install, not a traceback
                line = missing_package(name, err)
                raise (UserError(line) if line else err) from None
    return built


def trainer(cfg: DictConfig, callbacks: list[L.Callback], loggers: list) -> L.Trainer:
    built = _instantiate(
        cfg.trainer,
        "trainer",
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
        precision=precision.resolve(cfg.trainer.precision, cfg.trainer.get("accelerator", "auto")),
    )
    precision.warn_if_slow(built.precision, on_cpu=built.strategy.root_device.type == "cpu")
    step_hooks.skip_unused(built.callbacks)  # Lightning's own (its progress bar) included
    rank_watch.install()
    return built


def restore(stored: dict[str, Any], data_cfg: DictConfig | None = None):
    """`restore_network` and the run's datamodule. Returns (run config, preprocessing,
    datamodule, network)."""
    run_cfg, prep, net = restore_network(stored, data_cfg)
    return run_cfg, prep, datamodule(run_cfg.data, prep), net

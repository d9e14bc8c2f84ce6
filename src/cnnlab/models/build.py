"""Networks from their config, without Hydra or Lightning: one path for training
(`training.build`) and for `cnnlab.load`, so a notebook that loads a checkpoint imports neither.
A network config is `_target_` (a dotted callable) and its keyword arguments, resolved."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from cnnlab.core.checkpoint import is_weights_file
from cnnlab.core.errors import UserError, could_not_build
from cnnlab.core.preprocessing import Preprocessing, decide
from cnnlab.models import weights as weights_file
from cnnlab.models.anatomy import find_head
from cnnlab.models.knn_head import KNNHead


def instantiate(node: dict | DictConfig, what: str, **overrides: Any) -> Any:
    """Call `node._target_` with the node's other keys (nested `_target_` nodes built first) and
    `overrides`; a failure is one UserError line naming `what` and the cause."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    kwargs = {**node, **overrides}
    target = str(kwargs.pop("_target_"))
    try:
        module, _, name = target.rpartition(".")
        factory = getattr(importlib.import_module(module), name)
        _check_arguments(factory, target, kwargs, what)
        built = {
            k: instantiate(v, f"{what}.{k}") if isinstance(v, dict) and "_target_" in v else v
            for k, v in kwargs.items()
        }
        return factory(**built)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - report which network failed, with the cause
        cause = err.__cause__ if isinstance(err.__cause__, UserError) else err
        failure = could_not_build(what, cause)
        raise failure from (None if failure is cause else err)


def _check_arguments(factory: Any, target: str, kwargs: dict[str, Any], what: str) -> None:
    """Only the keyword arguments the builder declares (a config read from a file cannot slip
    another one through a builder's **kwargs-less signature)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: nothing to compare
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise UserError(
            f"could not build {what}: {target} takes no argument {unknown[0]!r} "
            f"(it takes: {', '.join(sorted(names)) or 'none'})"
        )


def network(model_cfg: DictConfig, prep: Preprocessing) -> nn.Module:
    """The network for `prep.input_size` images, with `model.weights` applied: a torchvision
    weights name is passed to torchvision; a file path is loaded here, backbone only. A network
    whose config has an `image_size` argument gets the input size there."""
    label = model_cfg.get("name") or model_cfg.net._target_.rpartition(".")[2]
    minimum = model_cfg.get("min_input_size") or 1
    if prep.input_size < minimum:
        raise UserError(
            f"model {label} needs images of at least {minimum}×{minimum} pixels, but "
            f"data.input_size={prep.input_size}; drop that override or raise it"
        )
    weights = model_cfg.get("weights")
    from_file = is_weights_file(weights)
    if weights and not from_file and "weights" not in model_cfg.net:
        raise UserError(
            f"model.weights={weights!r}: {label} is built from scratch here; give a "
            f"checkpoint or state-dict file, or use a torchvision model"
        )
    overrides: dict[str, Any] = {}
    if from_file and "weights" in model_cfg.net:
        overrides["weights"] = None  # the file's weights are loaded below
    if "image_size" in model_cfg.net:
        overrides["image_size"] = prep.input_size
    net = instantiate(model_cfg.net, f"model ({label})", **overrides)
    if from_file:
        weights_file.load_backbone(net, str(weights), head_name(model_cfg, net))
    return net


def head_name(model_cfg: DictConfig, net: nn.Module) -> str:
    head = model_cfg.get("head") or "auto"
    return find_head(net)[0] if head == "auto" else head


def restore_network(stored: dict[str, Any], data_cfg: DictConfig | None = None):
    """The network of a finished run (untrained), from the config its checkpoint stores, and its
    preprocessing exactly as in training (weights' statistics included), with nothing downloaded
    (the checkpoint holds the trained weights). Returns (run config, preprocessing, network)."""
    run_cfg = OmegaConf.create(stored)
    if data_cfg is not None:
        run_cfg.data = data_cfg
    prep = decide(run_cfg.data, run_cfg.model)  # the weights' statistics count, before dropped
    run_cfg.model.weights = None
    net = network(run_cfg.model, prep)
    knn = run_cfg.get("classifier") or {}
    if knn.get("kind") == "knn":  # the feature bank is the head (`classifier=knn`)
        head = KNNHead(int(knn.bank_size), int(knn.feature_dim), int(run_cfg.data.num_classes),
                       int(knn.k), float(knn.temperature))  # fmt: skip
        net.set_submodule(head_name(run_cfg.model, net), head)
    return run_cfg, prep, net

"""Initialise a network from a local file: a cnnlab/Lightning checkpoint or a plain state dict.

Keys are matched by name and shape; the head is always left as built (a new task has new
classes). Anything else that does not fit is reported in one line and stops the run, because a
backbone that silently loaded half its weights trains as if from scratch.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from cnnlab.core import checkpoint
from cnnlab.core.errors import UserError
from cnnlab.models.anatomy import in_head

log = logging.getLogger(__name__)
PREFIXES = ("net.", "model.", "module.")  # ClassifierModule, other LightningModules, DDP


def _state_dict(obj: dict) -> dict[str, torch.Tensor]:
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError("the weights file holds no state dict of tensors")
    for prefix in PREFIXES:
        if state and all(
            k.startswith(prefix)
            for k in state
            if not k.startswith(("train_", "val_", "test_", "criterion"))
        ):
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def load_backbone(net: nn.Module, path: str, head: str) -> None:
    """Copy every matching tensor except the head's; raise if anything else does not match."""
    try:
        state = _state_dict(checkpoint.load(path))
    except UserError as err:
        raise UserError(f"model.weights={path}: {err}") from None
    own = net.state_dict()

    def is_head(key: str) -> bool:
        return in_head(key, head)

    problems = checkpoint.mismatch(own, state, ignore=is_head)
    if problems:
        raise UserError(
            f"model.weights={path} does not fit this network beyond its head: {problems}"
        )
    loaded = {k: v for k, v in state.items() if k in own and not is_head(k)}
    net.load_state_dict({**own, **loaded})
    kept = sum(1 for k in own if is_head(k))
    log.info(
        "model.weights=%s: loaded %d tensors; head %s kept new (%d tensors)",
        path,
        len(loaded),
        head,
        kept,
    )

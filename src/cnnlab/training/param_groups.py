"""Optimizer parameter groups: head vs backbone learning rates, and no weight decay on
normalisation layers and biases (decaying them shrinks BatchNorm scales for no benefit)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from cnnlab.models.anatomy import in_head

NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _no_decay_names(net: nn.Module) -> set[str]:
    names = set()
    for module_name, module in net.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if isinstance(module, NORMS) or param_name == "bias" or param_name.endswith("_bias"):
                names.add(full)
    return names


def param_groups(
    net: nn.Module,
    *,
    head: str,
    lr: float,
    weight_decay: float,
    backbone_lr_ratio: float = 1.0,
    decay_norm_and_bias: bool = False,
    include_frozen: bool = False,
) -> list[dict]:
    """Up to four groups: {head, backbone} × {decay, no_decay}; empty groups are left out.

    Frozen parameters are left out unless `include_frozen` (gradual unfreezing).
    """
    no_decay = set() if decay_norm_and_bias else _no_decay_names(net)
    groups: dict[str, dict] = {}
    for name, p in net.named_parameters():
        if not p.requires_grad and not include_frozen:
            continue
        part = "head" if in_head(name, head) else "backbone"
        decays = name not in no_decay
        key = f"{part}" if decays else f"{part}_no_decay"
        group = groups.setdefault(
            key,
            {
                "name": key,
                "params": [],
                "lr": lr * (backbone_lr_ratio if part == "backbone" else 1.0),
                "weight_decay": weight_decay if decays else 0.0,
            },
        )
        group["params"].append(p)
    return list(groups.values())


@dataclass(frozen=True)
class GroupPlan:
    """Everything the optimizer's groups depend on, decided by `build.group_plan` from the config
    and the freeze strategy before the module exists; applied to the network when Lightning
    calls `configure_optimizers` (after the strategy froze what it freezes)."""

    head: str
    lr: float
    weight_decay: float
    backbone_lr_ratio: float = 1.0  # backbone lr = lr × this (gentler fine-tuning)
    decay_norm_and_bias: bool = False
    include_frozen: bool = False  # gradual unfreezing: the backbone group exists from the start

    def groups(self, net: nn.Module) -> list[dict]:
        return param_groups(net, **asdict(self))

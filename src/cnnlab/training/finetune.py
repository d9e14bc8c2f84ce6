"""Transfer-learning strategies as Lightning callbacks (`conf/freeze/`).

The network is `backbone + head`, the head being the submodule its model config names. Frozen
parameters get `requires_grad=False` and frozen BatchNorm layers stay in eval mode for the whole
run, so their running statistics do not move either (Lightning's BaseFinetuning keeps training
them). Freezing happens in `setup`, before `configure_optimizers`, so the optimizer sees only
what trains, except under `GradualUnfreeze`, which declares `holds_frozen_params`: its backbone
group is created up front (frozen parameters have no gradient, so the optimizer skips them) so
that the LR scheduler covers it. `build.group_plan` reads that declaration.
"""

from __future__ import annotations

import logging

import lightning as L
from torch import nn

from cnnlab.models.anatomy import in_head

log = logging.getLogger(__name__)


def set_frozen(modules: list[nn.Module], frozen: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad = not frozen
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train(not frozen)  # eval mode: running mean/var are used, not updated


def top_level_stages(net: nn.Module, head: str) -> list[tuple[str, nn.Module]]:
    """The backbone as a flat list of stages in definition order: the direct children of the
    network, with the container that holds the head opened one level (e.g. VGG's `classifier`)."""
    heads = head.split(",")
    stages: list[tuple[str, nn.Module]] = []
    for name, child in net.named_children():
        if in_head(name, head):
            continue
        if any(h.startswith(name + ".") for h in heads):
            stages += [
                (f"{name}.{n}", c)
                for n, c in child.named_children()
                if not (
                    in_head(f"{name}.{n}", head) or any(h.startswith(f"{name}.{n}.") for h in heads)
                )
            ]
        else:
            stages.append((name, child))
    return stages


class FreezeStrategy(L.Callback):
    """Base: knows the head's name; keeps frozen BatchNorm layers in eval mode every epoch."""

    holds_frozen_params = False  # must the optimizer hold the frozen parameters from the start?

    def __init__(self, head: str):
        self.head = head
        self.frozen: list[nn.Module] = []

    def backbone(self, net: nn.Module) -> list[nn.Module]:
        return [m for _, m in top_level_stages(net, self.head)]

    def freeze(self, modules: list[nn.Module]) -> None:
        set_frozen(modules, True)
        self.frozen = list(modules)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning calls model.train() before every epoch: put frozen BatchNorm back in eval.
        set_frozen(self.frozen, True)

    def state_dict(self) -> dict:
        return {}


class LinearProbe(FreezeStrategy):
    """Frozen backbone (weights and BatchNorm statistics); only the head trains. Parameters the
    network holds itself, outside any stage (a ViT's class token and position embedding), are
    backbone too."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.freeze(self.backbone(pl_module.net))
        for name, p in pl_module.net.named_parameters():
            if not in_head(name, self.head):
                p.requires_grad = False


class PartialFreeze(FreezeStrategy):
    """Freeze every stage up to and including `until` (e.g. `layer3`); train the rest."""

    def __init__(self, head: str, until: str):
        super().__init__(head)
        self.until = until

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        from cnnlab.core.errors import UserError

        stages = top_level_stages(pl_module.net, self.head)
        names = [n for n, _ in stages]
        if self.until not in names:
            raise UserError(
                f"freeze.until={self.until!r} is not a stage of this model; "
                f"valid: {', '.join(names)}"
            )
        self.freeze([m for _, m in stages[: names.index(self.until) + 1]])


class GradualUnfreeze(FreezeStrategy):
    """Linear probe until `unfreeze_at_epoch`, then the backbone trains too; with `stages`, one
    stage every `stage_interval` epochs, top-down (the stage nearest the head first)."""

    holds_frozen_params = True  # the backbone group exists from the start, for the LR scheduler

    def __init__(
        self,
        head: str,
        unfreeze_at_epoch: int = 1,
        stages: list[str] | None = None,
        stage_interval: int = 1,
    ):
        super().__init__(head)
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.stages = list(stages) if stages else None
        self.stage_interval = stage_interval

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.freeze(self.backbone(pl_module.net))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        named = dict(top_level_stages(pl_module.net, self.head))
        if self.stages is None:
            thawed = list(named.values()) if epoch >= self.unfreeze_at_epoch else []
        else:
            count = (
                0
                if epoch < self.unfreeze_at_epoch
                else 1 + (epoch - self.unfreeze_at_epoch) // self.stage_interval
            )
            thawed = [named[s] for s in self.stages[:count]]
        if thawed:
            set_frozen(thawed, False)
            log.info("epoch %d: %d backbone stage(s) training", epoch, len(thawed))
        self.frozen = [m for m in named.values() if all(m is not t for t in thawed)]
        super().on_train_epoch_start(trainer, pl_module)

"""ClassifierModule: the task-generic LightningModule. It receives a built network, an optimizer
factory and an optional scheduler factory, and runs one shared step for train/val/test."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from cnnlab.errors import UserError
from cnnlab.param_groups import param_groups

log = logging.getLogger(__name__)


class NonFiniteError(UserError):
    """A NaN/Inf loss or gradient: training stops before the weights are touched."""


OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., dict]


class ClassifierModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        *,
        num_classes: int,
        label_smoothing: float = 0.0,
        head: str = "",
        backbone_lr_ratio: float = 1.0,
        decay_norm_and_bias: bool = False,
        channels_last: bool = False,
        compile: bool = False,
        nonfinite: str = "stop",
        max_skips: int = 0,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        # Only plain values go into checkpoints (they load with weights_only=True); the resolved
        # run config lets `eval` and `explain` rebuild the network from the checkpoint alone.
        self.save_hyperparameters(
            {
                "num_classes": num_classes,
                "label_smoothing": label_smoothing,
                "config": config or {},
            },
            logger=False,
        )
        self.net = net
        # channels_last: NHWC memory layout, faster convolutions on CPUs with oneDNN and on tensor
        # cores; compile: torch.compile the network (the state dict keeps the plain names).
        self.channels_last = channels_last
        if nonfinite not in ("stop", "skip"):
            raise ValueError(f"nonfinite={nonfinite!r}; valid: stop, skip")
        self.nonfinite, self.max_skips, self.skipped = nonfinite, max_skips, 0
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # Kept out of the module tree (plain attribute): checkpoints hold `net.*` keys only.
        self.__dict__["_forward"] = torch.compile(self.net) if compile else self.net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.head = head
        self.backbone_lr_ratio = backbone_lr_ratio
        self.decay_norm_and_bias = decay_norm_and_bias
        self.optimize_frozen = (
            False  # set by GradualUnfreeze: its backbone group exists from the start
        )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.top_k = top_k = min(5, num_classes)
        # Training: a running total (loss × images, top-1 hits, top-k hits, images) instead of
        # torchmetrics objects, whose per-update bookkeeping cost 1.3 ms of a 3.3 ms framework
        # overhead per step here (tiny MLP, cnnlab vs the plain loop, same process).
        self._train_totals: torch.Tensor | None = None
        for stage in ("val", "test"):
            setattr(self, f"{stage}_loss", MeanMetric())
            setattr(self, f"{stage}_acc", MulticlassAccuracy(num_classes, average="micro"))
            setattr(
                self, f"{stage}_acc5", MulticlassAccuracy(num_classes, top_k=top_k, average="micro")
            )
        self.val_acc_best = MaxMetric()
        self.best_epoch: int | None = (
            None  # epoch of the best val/acc (as ModelCheckpoint: first max)
        )
        self._best_acc = -1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._forward(x)

    @staticmethod
    def _hard(targets: torch.Tensor) -> torch.Tensor:
        return targets.argmax(dim=1) if targets.ndim == 2 else targets  # MixUp/CutMix soft targets

    def _step(self, batch, stage: str) -> torch.Tensor:
        """Validation and test: loss and accuracies through torchmetrics, logged per epoch."""
        images, targets = batch
        logits = self(images)
        loss = self.criterion(logits, targets)
        hard = self._hard(targets)
        getattr(self, f"{stage}_loss").update(loss.detach(), weight=images.shape[0])
        getattr(self, f"{stage}_acc").update(logits.detach(), hard)
        getattr(self, f"{stage}_acc5").update(logits.detach(), hard)
        for name in ("loss", "acc", "acc5"):
            self.log(
                f"{stage}/{name}",
                getattr(self, f"{stage}_{name}"),
                on_step=False,
                on_epoch=True,
                prog_bar=name != "acc5",
                metric_attribute=f"{stage}_{name}",
            )
        return loss

    def _count(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        with torch.no_grad():
            hits = logits.topk(self.top_k, dim=1).indices == self._hard(targets)[:, None]
            n = torch.tensor(float(len(hits)), device=loss.device)
            # float32 throughout (stack promotes the integer hit counts): exact up to 16.7 M
            # images per epoch, and MPS has no float64
            row = torch.stack([loss.detach().float() * n, hits[:, 0].sum(), hits.any(1).sum(), n])
            self._train_totals = row if self._train_totals is None else self._train_totals + row

    def _logs_this_step(self) -> bool:
        """Lightning writes step values every `log_every_n_steps`; a self.log call costs ~0.5 ms
        here, so the step loss is only logged when it will be written (and shown)."""
        connector = getattr(self._trainer, "_logger_connector", None)  # None: no trainer
        return connector is not None and bool(connector.should_update_logs)

    def on_train_epoch_end(self) -> None:
        totals, self._train_totals = self._train_totals, None
        if totals is None:  # no finite training step this epoch
            return
        loss_sum, top1, topk, n = self.trainer.strategy.reduce(totals, reduce_op="sum").tolist()
        # Already summed over ranks: sync_dist only tells Lightning so (no warning).
        self.log("train/loss", loss_sum / n, prog_bar=True, sync_dist=True)
        self.log("train/acc", top1 / n, prog_bar=True, sync_dist=True)
        self.log("train/acc5", topk / n, sync_dist=True)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        images, targets = batch
        logits = self(images)
        loss = self.criterion(logits, targets)
        if torch.isfinite(loss):
            self._count(loss, logits, targets)
            if self._logs_this_step():
                self.log(
                    "train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True
                )
            return loss
        if self.nonfinite == "skip" and self.skipped < self.max_skips:
            self.skipped += 1
            log.warning(
                "non-finite loss at step %d: batch skipped (%d of %d allowed)",
                self.global_step,
                self.skipped,
                self.max_skips,
            )
            return None  # Lightning skips backward and the optimizer step
        raise NonFiniteError(
            f"non-finite loss ({float(loss)}) at step {self.global_step} "
            f"(epoch {self.current_epoch}); lower optimizer.lr, or set "
            f"nonfinite=skip max_skips=K to skip such batches"
        )

    def on_before_optimizer_step(self, optimizer) -> None:
        # The gradients this optimizer is about to apply (its groups are lists already: walking
        # the module tree cost ~0.4 ms per step). One fused norm per tensor: 3.8 ms instead of
        # 26 ms per ResNet-18 step here (isfinite().all() per tensor); their sum is finite only
        # if every norm is, and a sum that overflows float32 flags the step too.
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not grads or torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum()):
            return
        bad = [
            n
            for n, p in self.named_parameters()
            if p.grad is not None and not torch.isfinite(p.grad).all()
        ] or ["a gradient whose norm overflows float32"]
        if bad:
            raise NonFiniteError(
                f"non-finite gradient at step {self.global_step} in {bad[0]} "
                f"(and {len(bad) - 1} more); the weights were not updated"
            )

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # sanity-check batches must not count as a best epoch
        self._best_acc, self.best_epoch = -1.0, None

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        acc = float(self.val_acc.compute())
        if acc > self._best_acc:
            self._best_acc, self.best_epoch = acc, self.current_epoch
        self.val_acc_best(acc)
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Class names travel with the weights: `explain` labels its overlays without the data.
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and getattr(dm, "class_names", None):
            checkpoint["class_names"] = list(dm.class_names)

    def configure_optimizers(self):
        defaults = getattr(self.optimizer_factory, "keywords", {})
        groups = param_groups(
            self.net,
            head=self.head,
            lr=defaults.get("lr", 1e-3),
            weight_decay=defaults.get("weight_decay", 0.0),
            backbone_lr_ratio=self.backbone_lr_ratio,
            decay_norm_and_bias=self.decay_norm_and_bias,
            include_frozen=self.optimize_frozen,
        )
        optimizer = self.optimizer_factory(groups)
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(
            optimizer, total_steps=total_steps, max_epochs=max(1, self.trainer.max_epochs or 1)
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

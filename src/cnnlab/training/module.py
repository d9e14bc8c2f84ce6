"""ClassifierModule: the task-generic LightningModule. It receives a built network, an optimizer
factory, an optional scheduler factory and the parameter-group plan, and runs one shared step for
train/val/test. Its own settings come from `conf/module/`; the non-finite guard is a callback
(`cnnlab.callbacks.nonfinite`)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from cnnlab.core import checkpoint as contract  # `checkpoint` is Lightning's dict here
from cnnlab.core.metric_names import EVAL_METRICS
from cnnlab.training.param_groups import GroupPlan

# Training steps whose counts wait on the device before they are summed (memory stays a few KB).
FOLD = 64
OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., dict]


def _eval_metrics(num_classes: int, top_k: int) -> nn.ModuleDict:
    """The loss (a mean weighted by images) and the scores of the logits, updated together."""
    scores = MetricCollection({
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "acc5": MulticlassAccuracy(num_classes, top_k=top_k, average="micro"),
        # Balanced accuracy (the mean per-class recall) and macro F1: what imbalanced data needs;
        # any of them can be the best checkpoint's monitor or the optimized metric.
        "balanced_acc": MulticlassAccuracy(num_classes, average="macro"),
        "macro_f1": MulticlassF1Score(num_classes, average="macro"),
    }, compute_groups=False)  # logged one by one: each keeps its own state  # fmt: skip
    return nn.ModuleDict({"loss": MeanMetric(), "scores": scores})


class ClassifierModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        *,
        groups: GroupPlan,
        num_classes: int,
        label_smoothing: float = 0.1,
        channels_last: bool = True,
        compile: bool = False,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        # Only plain values go into checkpoints (they load with weights_only=True); the resolved
        # run config lets `eval`, `explain` and `cnnlab.load` rebuild the network and decide its
        # preprocessing again, exactly as in training, from the checkpoint alone.
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
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # Kept out of the module tree (plain attribute): checkpoints hold `net.*` keys only.
        self.__dict__["_forward"] = torch.compile(self.net) if compile else self.net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.groups = groups
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.top_k = top_k = min(5, num_classes)
        # Training: a running total (loss × images, top-1 hits, top-k hits, images) instead of
        # torchmetrics objects, whose per-update bookkeeping was most of cnnlab's host cost per
        # step over the plain loop (make bench's host-cost rows measure it).
        self._train_totals: torch.Tensor | None = None
        self._train_steps: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # not yet summed
        # Validation and test, one collection each, keyed as logged (core.metric_names).
        self.metrics = nn.ModuleDict({stage: _eval_metrics(num_classes, top_k)
                                      for stage in ("val", "test")})  # fmt: skip
        # The one best tracker: val/acc_best and its epoch (ModelCheckpoint keeps the first max).
        self.best_epoch: int | None = None
        self._best_acc = -1.0
        self._restored_best: tuple[float, int | None] | None = None  # from a resumed checkpoint
        self._class_weights: torch.Tensor | None = None  # data.balance=loss, set at fit start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._forward(x)

    @staticmethod
    def _hard(targets: torch.Tensor) -> torch.Tensor:
        return targets.argmax(dim=1) if targets.ndim == 2 else targets  # MixUp/CutMix soft targets

    def _step(self, batch, stage: str) -> torch.Tensor:
        """Validation and test: loss and accuracies through torchmetrics, logged per epoch.
        Returns the detached logits, which callbacks read in `on_*_batch_end` (diagnostics
        reuses the validation pass instead of predicting the split again)."""
        images, targets = batch
        logits = self(images)
        loss = self.criterion(logits, targets)
        metrics = self.metrics[stage]
        metrics["loss"].update(loss.detach(), weight=images.shape[0])
        metrics["scores"].update(logits.detach(), self._hard(targets))
        for name in EVAL_METRICS:
            metric = metrics["loss"] if name == "loss" else metrics["scores"][name]
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True,
                     prog_bar=name in ("loss", "acc"))  # fmt: skip
        return logits.detach()

    def _count(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Keep this step's loss and hits per rank on the device (four device ops); they are
        summed every `FOLD` steps and read once, at the epoch's end."""
        with torch.no_grad():
            ranks = logits.topk(self.top_k, dim=1).indices == self._hard(targets).unsqueeze(1)
            self._train_steps.append((loss.detach(), ranks.sum(0), len(targets)))
        if len(self._train_steps) >= FOLD:
            self._fold_train_steps()

    def _fold_train_steps(self) -> None:
        """Add the kept steps to the epoch's running total (loss × images, top-1 hits, top-k
        hits, images), on the device. A non-finite step (skipped by the non-finite guard)
        counts nothing: masked rather than branched on, so counting never waits for the device."""
        steps, self._train_steps = self._train_steps, []
        if not steps:
            return
        with torch.no_grad():
            losses = torch.stack([loss for loss, _, _ in steps]).float()
            finite = losses.isfinite()
            images = torch.cat([losses.new_full((len(list(run)),), float(n))
                                for n, run in groupby(n for _, _, n in steps)])  # fmt: skip
            images = images * finite
            ranks = torch.stack([r for _, r, _ in steps]).float() * finite.unsqueeze(1)
            # float32 throughout: exact up to 16.7 M images per epoch, and MPS has no float64
            row = torch.stack([(losses.nan_to_num(0.0, 0.0, 0.0) * images).sum(),
                               ranks[:, 0].sum(), ranks.sum(), images.sum()])  # fmt: skip
            self._train_totals = row if self._train_totals is None else self._train_totals + row

    def _logs_this_step(self) -> bool:
        """Lightning writes step values every `trainer.log_every_n_steps` optimizer steps; a
        self.log call costs host time, so the step loss is only logged when it is written."""
        if self._trainer is None:
            return False
        return (self.trainer.global_step + 1) % max(1, self.trainer.log_every_n_steps) == 0

    def on_train_epoch_end(self) -> None:
        self._fold_train_steps()
        totals, self._train_totals = self._train_totals, None
        if totals is None:
            return
        loss_sum, top1, topk, n = self.trainer.strategy.reduce(totals, reduce_op="sum").tolist()
        if n == 0:  # no finite training step this epoch
            return
        # Already summed over ranks: sync_dist only tells Lightning so (no warning).
        self.log("train/loss", loss_sum / n, prog_bar=True, sync_dist=True)
        self.log("train/acc", top1 / n, prog_bar=True, sync_dist=True)
        self.log("train/acc5", topk / n, sync_dist=True)

    def on_fit_start(self) -> None:
        # data.balance=loss: class weights from the training split's counts, kept out of the
        # state dict (checkpoints of every balance setting hold the same keys).
        dm = getattr(self.trainer, "datamodule", None)
        weights = dm.class_weights() if hasattr(dm, "class_weights") else None
        self._class_weights = None if weights is None else weights.to(self.device)

    def _train_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self._class_weights is None:
            return self.criterion(logits, targets)
        return nn.functional.cross_entropy(
            logits,
            targets,
            weight=self._class_weights,
            label_smoothing=self.criterion.label_smoothing,
        )

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        logits = self(images)
        loss = self._train_loss(logits, targets)
        self._count(loss, logits, targets)
        if self._logs_this_step():
            # Not on the progress bar: Lightning would read a bar value back on every batch once
            # it is cached (a host sync per step on a GPU; Lightning issue #21232). The bar shows
            # the epoch's train/loss; the loggers get this one on logging steps.
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def on_train_start(self) -> None:
        self.resume_best()

    def resume_best(self) -> None:
        """The running best from a restored checkpoint (or none): fit's start, and a finished
        fit's validation pass when its test runs again (`training.fit`)."""
        self._best_acc, self.best_epoch = self._restored_best or (-1.0, None)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        acc = float(
            self.metrics["val"]["scores"]["acc"].compute()
        )  # already the same on every rank
        if acc > self._best_acc:
            self._best_acc, self.best_epoch = acc, self.current_epoch
        self.log("val/acc_best", self._best_acc, sync_dist=True)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        # The network, optimizer and groups are built objects, not hyperparameters: Lightning
        # cannot rebuild them from the checkpoint, but cnnlab can from its stored config.
        raise TypeError(
            f"ClassifierModule.load_from_checkpoint cannot rebuild the network; use "
            f"cnnlab.load({str(checkpoint_path)!r}) (network in eval mode, class names, "
            f"preprocessing)"
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Class names travel with the weights: `explain` labels its overlays without the data.
        dm = getattr(self.trainer, "datamodule", None)
        # The running best survives a resume (val/acc_best, best_epoch: what sweeps rank by).
        best = {"val/acc": self._best_acc, "epoch": self.best_epoch}
        contract.put_run_state(checkpoint, getattr(dm, "class_names", None), best)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        best = contract.best_so_far(checkpoint)
        if best and best.get("epoch") is not None:
            self._restored_best = (float(best["val/acc"]), int(best["epoch"]))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.groups.groups(self.net))
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(
            optimizer, total_steps=total_steps, max_epochs=max(1, self.trainer.max_epochs or 1)
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

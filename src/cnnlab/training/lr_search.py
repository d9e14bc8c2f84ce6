"""The learning-rate range test (Smith 2017) through Lightning's tuner: a short run whose rate
grows exponentially from `min_lr` to `max_lr`, the loss against the rate, and the rate where the
loss falls fastest as the suggestion. The network's weights are restored afterwards."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from lightning.pytorch.tuner import Tuner  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402
from PIL import Image  # noqa: E402

from cnnlab.core.errors import UserError  # noqa: E402
from cnnlab.core.media import Media  # noqa: E402
from cnnlab.training import build  # noqa: E402

log = logging.getLogger(__name__)
PLACEHOLDER_LR = 1e-3  # builds the optimizer before the search replaces every group's rate
BETA = 0.98  # the loss's exponential smoothing, as Lightning's and fast.ai's range tests
LOW_LR = 1e-4  # a suggestion below this barely moves the weights in a short run: said so


class RawLosses:
    """Each step's loss as the range test sees it, from the module's own `on_train_batch_end`
    (the tuner replaces the trainer's callbacks with its own for the test). Lightning debiases
    its smoothed curve with the step count already advanced (1 - β² on the first step instead of
    1 - β), so its first point is half the real loss and the curve rises before it falls; cnnlab
    smooths these instead."""

    def __init__(self, module: L.LightningModule):
        self.losses: list[float] = []
        self.module, self.hook = module, module.on_train_batch_end
        module.on_train_batch_end = self._record  # on the instance: Lightning calls it

    def _record(self, outputs, batch, batch_idx):
        loss = outputs if isinstance(outputs, torch.Tensor) else (outputs or {}).get("loss")
        self.losses.append(float("nan") if loss is None else float(loss))
        return self.hook(outputs, batch, batch_idx)

    def remove(self) -> None:
        del self.module.on_train_batch_end


def smoothed(losses: list[float], beta: float = BETA) -> list[float]:
    """Exponential moving average from zero, debiased by 1 - β^k after the k-th loss (k ≥ 1):
    the first point is the first loss itself. A missing loss (nan) keeps the average."""
    out, avg, k = [], 0.0, 0
    for loss in losses:
        if loss == loss:  # not nan
            k += 1
            avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**k) if k else float("nan"))
    return out


def search(cfg: DictConfig, out_dir: Path, *, steps: int = 100) -> float:
    """Run the range test on the configured run; write `lr_find.png` (and the figure to
    every logger that shows images); return the suggested rate."""
    with open_dict(cfg):
        cfg.optimizer.lr = PLACEHOLDER_LR
        # The test's own step count decides how long it runs, not the recipe's epochs (one
        # epoch of a small dataset is fewer than `steps` batches); a schedule that plans its
        # length (onecycle) plans it for these steps.
        cfg.trainer.max_epochs = -1
        cfg.trainer.max_steps = steps
    _, datamodule, net = build.data_and_network(cfg)
    strategy = build.freeze_strategy(cfg, net)
    model = build.classifier(cfg, net, strategy)
    loggers = list(build.loggers(cfg).values())
    trainer = build.trainer(cfg, [strategy] if strategy else [], loggers)
    raw = RawLosses(model)
    try:
        finder = Tuner(trainer).lr_find(
            model, datamodule=datamodule, min_lr=1e-6, max_lr=1.0, num_training=steps,
            update_attr=False,
        )  # fmt: skip
    finally:
        raw.remove()
    lrs = list(finder.results["lr"]) if finder is not None else []
    losses = smoothed(raw.losses) if len(raw.losses) == len(lrs) else []
    ran = len(lrs)  # fewer than `steps` when the loss diverged (Lightning stops at 4× its low)
    log.info("learning-rate range test: %d of %d steps, rates %.1e to %.1e", ran, steps,
             lrs[0] if lrs else 0.0, lrs[-1] if lrs else 0.0)  # fmt: skip
    index = steepest(lrs, losses)
    if index is None:
        raise UserError(
            f"the learning-rate search found no falling loss in {ran} steps (a diverged or "
            f"flat curve); set optimizer.lr yourself"
        )
    suggestion = lrs[index]
    fig = _plot(lrs, losses, index)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "lr_find.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    with Image.open(out_dir / "lr_find.png") as png:  # the PNG just written, to every logger
        Media(loggers).image("lr_find/loss_vs_lr", np.asarray(png.convert("RGB")), 0)
    for lg in loggers:
        lg.log_metrics({"lr_find/suggestion": float(suggestion)}, step=0)
        if isinstance(lg, TensorBoardLogger):
            lg.experiment.flush()
    _warn_if_doubtful(float(suggestion), trainer, ran)
    return float(suggestion)


def steepest(lrs: list[float], losses: list[float], skip_begin: int = 10) -> int | None:
    """The index where the smoothed loss falls fastest per decade of learning rate, before its
    minimum (past it the run diverges), skipping the first `skip_begin` points. Lightning's own
    suggestion takes the slope per unit of rate, which favours the noisy low end of a log grid."""
    loss, lr = np.asarray(losses, float), np.asarray(lrs, float)
    ok = np.isfinite(loss) & (lr > 0)
    ok[:skip_begin] = False
    if ok.sum() < 3:
        return None
    idx = np.flatnonzero(ok)
    bottom = idx[np.argmin(loss[idx])]
    idx = idx[idx <= bottom]
    if len(idx) < 3:
        return None
    slope = np.gradient(loss[idx], np.log10(lr[idx]))
    best = int(idx[np.argmin(slope)])
    return best if slope.min() < 0 else None


def _plot(lrs: list[float], losses: list[float], index: int):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(lrs, losses)
    ax.plot(lrs[index], losses[index], "o", color="red", markersize=9, label="suggestion")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"training loss (smoothed, β = {BETA})")
    ax.set_title(f"learning-rate range test: suggestion {lrs[index]:.3g}")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def _warn_if_doubtful(suggestion: float, trainer, steps: int) -> None:
    """Say when the suggestion is unlikely to train: tiny, or measured on data the test saw many
    times over (its curve then tracks memorisation, not the rate)."""
    batches = trainer.num_training_batches
    if isinstance(batches, int) and 0 < batches < steps / 2:
        log.warning("the range test ran %d steps over %d training batches (%.0f passes): its "
                    "curve measures memorising them; check lr_find.png or set optimizer.lr",
                    steps, batches, steps / batches)  # fmt: skip
    if suggestion < LOW_LR:
        log.warning("the range test suggests lr %.3g, below %g: training would barely move; "
                    "check lr_find.png or set optimizer.lr", suggestion, LOW_LR)  # fmt: skip

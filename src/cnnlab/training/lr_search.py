"""The learning-rate range test (Smith 2017) through Lightning's tuner: a short run whose rate
grows exponentially from `min_lr` to `max_lr`, the loss against the rate, and the rate where the
loss falls fastest as the suggestion. The network's weights are restored afterwards."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from lightning.pytorch.tuner import Tuner  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402
from PIL import Image  # noqa: E402

from cnnlab.errors import UserError  # noqa: E402
from cnnlab.training import build  # noqa: E402
from cnnlab.training.media import Media  # noqa: E402

log = logging.getLogger(__name__)
PLACEHOLDER_LR = 1e-3  # builds the optimizer before the search replaces every group's rate


def search(cfg: DictConfig, out_dir: Path, *, steps: int = 100) -> float:
    """Run the range test on the configured run; write `lr_find.png` (and the figure to
    every logger that shows images); return the suggested rate."""
    with open_dict(cfg):
        cfg.optimizer.lr = PLACEHOLDER_LR
    _, datamodule, net = build.data_and_network(cfg)
    strategy = build.freeze_strategy(cfg, net)
    model = build.classifier(cfg, net, strategy)
    loggers = list(build.loggers(cfg).values())
    trainer = build.trainer(cfg, [strategy] if strategy else [], loggers)
    finder = Tuner(trainer).lr_find(
        model, datamodule=datamodule, min_lr=1e-6, max_lr=1.0, num_training=steps,
        update_attr=False,
    )  # fmt: skip
    suggestion = finder.suggestion() if finder is not None else None
    if suggestion is None:
        raise UserError(
            f"the learning-rate search found no falling loss in {steps} steps (a diverged or "
            f"flat curve); set optimizer.lr yourself"
        )
    fig = finder.plot(suggest=True)
    fig.axes[0].set_title(f"learning-rate range test: suggestion {suggestion:.3g}")
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "lr_find.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    with Image.open(out_dir / "lr_find.png") as png:  # the PNG just written, to every logger
        Media(loggers).image("lr_find/loss_vs_lr", np.asarray(png.convert("RGB")), 0)
    for lg in loggers:
        lg.log_metrics({"lr_find/suggestion": float(suggestion)}, step=0)
        if isinstance(lg, TensorBoardLogger):
            lg.experiment.flush()
    return float(suggestion)

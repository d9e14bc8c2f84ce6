"""`make bench-scaling`: how training cost grows with dataset size and with model size.

Every cell is one cnnlab run on 3×32×32 images (synthetic: the cost does not depend on the
pixels), default callbacks and logger, 2 epochs; the figure is fit seconds per epoch (training
and validation, from the first training batch) and training images/s. `SAVE=1` writes
benchmarks/results/<machine>-scaling.md.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_common import compose  # noqa: E402
from benchmarks.timing import FitTimer  # noqa: E402
from cnnlab.cli.machine import cpu_model  # noqa: E402


def cnnlab_fit(*overrides: str) -> tuple[float, int, object]:
    """Seconds from the first training batch to the end of fit, training images, datamodule."""
    from cnnlab.commands.train import train
    from cnnlab.training import build

    timer = FitTimer()
    original = build.callbacks
    build.callbacks = lambda cfg: [*original(cfg), timer]
    try:
        cfg = compose("test=false", *overrides)
        _, objs = train(cfg)
    finally:
        build.callbacks = original
    dm = objs["datamodule"]
    return timer.fit_seconds, len(dm.train_set) * cfg.trainer.max_epochs, dm


MODELS = ("mlp", "convnet", "lenet5", "resnet_cifar", "vgg11")
SIZES = (1000, 2000, 4000)
EPOCHS = 2


def cell(model: str, images: int) -> tuple[float, float]:
    seconds, seen, _ = cnnlab_fit(
        f"model={model}",
        "data=fake",
        "data.image_size=32",
        "data.source.num_samples=4800",  # 4,320 training images before the limit
        f"data.train_limit={images}",
        "augment=none",
        f"trainer.max_epochs={EPOCHS}",
        "callbacks.progress_bar=null",
    )
    return seconds / EPOCHS, seen / seconds


def main() -> None:
    started = time.perf_counter()
    header = "| model | params | " + " | ".join(f"{n:,} images: s/epoch (img/s)" for n in SIZES)
    lines = [header + " |", "|---|---|" + "---|" * len(SIZES)]
    for model in MODELS:
        from cnnlab.training import build

        cfg = compose(f"model={model}", "data=fake", "data.image_size=32")
        params = sum(
            p.numel() for p in build.network(cfg.model, build.preprocessing(cfg)).parameters()
        )
        cells = [cell(model, n) for n in SIZES]
        lines.append(
            f"| {model} | {params:,} | "
            + " | ".join(f"{s:.1f} ({r:,.0f})" for s, r in cells)
            + " |"
        )
        print(lines[-1], flush=True)
    machine = (
        f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}"
    )
    text = "\n".join(
        [
            f"Machine: {machine}; 3×32×32 images, {EPOCHS} epochs per cell, default callbacks; "
            f"took {time.perf_counter() - started:.0f} s",
            "",
            *lines,
        ]
    )
    print(text)
    if os.environ.get("SAVE"):
        out = REPO / "benchmarks" / "results" / f"{platform.node() or 'machine'}-scaling.md"
        out.write_text(text + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()

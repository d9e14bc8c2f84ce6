"""`eval/<split>/` of a run: metrics.json, per_class.csv, confusion_matrix.csv/.png,
reliability.png and mistakes.png, and the same figures in TensorBoard. Written by `eval` and by
the test at the end of training. The folder is built beside its final name and renamed into
place, so a failure never leaves half a report."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from cnnlab.analysis import eval_figures, evaluation
from cnnlab.analysis.evaluation import Collected
from cnnlab.analysis.render import mistakes_grid
from cnnlab.core import checkpoint
from cnnlab.core.files import atomic_folder
from cnnlab.core.media import Media
from cnnlab.core.tables import markdown_table

log = logging.getLogger(__name__)
FILES = (checkpoint.METRICS, "per_class.csv", "confusion_matrix.csv", "confusion_matrix.png",
         "reliability.png", "mistakes.png")  # fmt: skip


def write(
    folder: Path,
    split: str,
    collected: Collected,
    names: list[str],
    to_unit,
    *,
    temperature: float = 1.0,
    extra: dict | None = None,
    loggers=(),
    step: int = 0,
) -> dict:
    """Write the report of one split into `folder/<split>/`; returns its metrics."""
    logits = collected.logits / temperature
    numbers = {"split": split, "temperature": temperature,
               **evaluation.metrics(logits, collected.targets, names), **(extra or {})}  # fmt: skip
    counts = evaluation.confusion(logits, collected.targets).numpy()
    with atomic_folder(folder / split) as tmp:  # a failure leaves the previous report whole
        _write_files(tmp, numbers, counts, logits, collected, names, to_unit, split, loggers, step)
    return numbers


def _write_files(
    tmp, numbers, counts, logits, collected, names, to_unit, split, loggers, step
) -> None:
    checkpoint.write_metrics(tmp, numbers)
    with open(tmp / "per_class.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["class", "support", "precision", "recall", "f1"])
        for name, row in numbers["per_class"].items():
            scores = (f"{row[k]:.6f}" for k in ("precision", "recall", "f1"))
            out.writerow([name, row["support"], *scores])
    with open(tmp / "confusion_matrix.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["true \\ predicted", *names])
        out.writerows([name, *map(int, row)] for name, row in zip(names, counts, strict=True))
    bins = evaluation.reliability(logits, collected.targets)
    figures = {"reliability": eval_figures.reliability_figure(bins, numbers["ece"], f"{split} ")}
    if len(names) <= eval_figures.DRAWN_UP_TO:
        figures["confusion_matrix"] = eval_figures.confusion_figure(counts, names)
    else:
        log.info("%d classes: confusion_matrix.png is not drawn (up to %d); the CSV has it",
                 len(names), eval_figures.DRAWN_UP_TO)  # fmt: skip
    try:
        for name, fig in figures.items():
            # constrained layout already fits the labels: bbox_inches="tight" would only redraw
            # every text once more to measure it
            fig.savefig(tmp / f"{name}.png", dpi=eval_figures.dpi(len(names)))
    finally:
        for fig in figures.values():
            plt.close(fig)
    mistakes = mistakes_grid(collected.mistakes, to_unit, names)
    if mistakes is not None:
        Image.fromarray(mistakes).save(tmp / "mistakes.png")
    media = Media(loggers)
    if media.unavailable():
        return
    for name in (*figures, "mistakes"):  # the PNGs just written: drawn once, not again
        if (tmp / f"{name}.png").is_file():
            with Image.open(tmp / f"{name}.png") as png:
                media.image(f"eval_{split}/{name}", np.asarray(png.convert("RGB")), step)
    media.text(f"eval_{split}/metrics", _summary_table(numbers), step)
    per_class = [[name, row["support"], *(round(row[k], 4) for k in ("precision", "recall", "f1"))]
                 for name, row in numbers["per_class"].items()]  # fmt: skip
    media.table(f"eval_{split}/per_class", ["class", "support", "precision", "recall", "f1"],
                per_class, step)  # fmt: skip


def _summary_table(numbers: dict) -> str:
    keys = ("top1", "top5", "balanced_accuracy", "macro_f1", "nll", "ece", "temperature")
    rows = [(k, f"{numbers[k]:.4f}") for k in keys if k in numbers]
    return markdown_table(["metric", "value"], rows)

"""The evaluation report's figures, drawn with matplotlib (once per evaluation, not per epoch):
the confusion matrix in counts and row-normalised, and the reliability diagram. The grid of the
most confident mistakes is `render.mistakes_grid` (PIL), shared with the training diagnostics."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import PowerNorm  # noqa: E402

ANNOTATE_UP_TO = 20  # classes: beyond that cells carry colour only, ticks stay labelled
# Classes up to which the confusion matrix is drawn: beyond, no picture can name them (and one
# of 10,000 classes ran out of memory); confusion_matrix.csv holds the numbers for any count.
DRAWN_UP_TO = 200


def dpi(classes: int) -> int:
    """Pixels per inch: 150 beyond 30 classes, where labels are 5 pt (10 px tall)."""
    return 100 if classes <= 30 else 150


def confusion_figure(counts: np.ndarray, names: list[str]):
    """Counts (left) and each row divided by the class's images (right). Cells shrink to
    0.14 in and labels to 5 pt at 100 classes: every class stays named."""
    n = len(names)
    side = max(4.0, 0.14 * n + 1.5)  # inches per panel
    label_pt = 8 if n <= 30 else 5
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1.5, side + 0.8), layout="constrained")
    shares = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    for ax, values, title in ((axes[0], counts, "counts"), (axes[1], shares, "row-normalised")):
        # Square-root colour scale: a few confusions beside a full diagonal stay visible.
        top = values.max() if values is counts else 1
        im = ax.imshow(values, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=max(top, 1e-9)))
        ax.set_title(f"confusion matrix ({title}; colour ∝ √value)")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_xticks(range(n), [s[:16] for s in names], rotation=90, fontsize=label_pt)
        ax.set_yticks(range(n), [s[:16] for s in names], fontsize=label_pt)
        fig.colorbar(im, ax=ax, shrink=0.8)
        if n <= ANNOTATE_UP_TO:
            for (i, j), v in np.ndenumerate(values):
                if counts[i, j]:
                    text = f"{int(v)}" if values is counts else f"{v:.2f}"
                    dark = shares[i, j] > 0.5
                    # in_layout=False: a cell's number never reaches the margins, so the
                    # layout need not measure its 100–200 texts
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, in_layout=False,
                            color="white" if dark else "black")  # fmt: skip
    return fig


def reliability_figure(bins: list[tuple[float, float, int]], ece: float, title: str = ""):
    """Accuracy against confidence per bin: on the diagonal, confidence means what it says."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True, layout="constrained"
    )
    conf = [b[0] for b in bins]
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    top.bar(conf, [b[1] for b in bins], width=1 / 15, edgecolor="black", alpha=0.7,
            label="accuracy per confidence bin")  # fmt: skip
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(f"reliability {title}(ECE {ece:.4f})".replace("  ", " "))
    top.legend(loc="upper left")
    bottom.bar(conf, [b[2] for b in bins], width=1 / 15, color="grey")
    bottom.set_yscale("log")
    bottom.set_xlabel("confidence (max softmax probability)")
    bottom.set_ylabel("images")
    bottom.set_xlim(0, 1)
    return fig

"""One small figure per claim (matplotlib, PNG bytes), from the `plot` a claim's verdict made."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def png(title: str, plot: dict) -> bytes | None:
    if not plot:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    kind = plot["kind"]
    errors = plot.get("errors", {})  # ± one standard deviation over the seeds, per series
    if kind == "bars":
        names, groups = list(plot["series"]), plot["groups"]
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            xs = [g + (i - (len(names) - 1) / 2) * width for g in range(len(groups))]
            bars = ax.bar(xs, plot["series"][name], width, label=name,
                          yerr=errors.get(name), capsize=3)  # fmt: skip
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylim(0, 105)  # from zero: bar heights compare as they are
    elif kind in ("lines", "curves"):
        for name, ys in plot["series"].items():
            xs = plot["x"] if kind == "lines" else list(range(1, len(ys) + 1))
            ax.errorbar(xs, ys, yerr=errors.get(name), marker="o", capsize=3, label=name)
        if kind == "curves":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        if plot.get("logx"):
            ax.set_xscale("log")
            ax.set_xticks(plot["x"], [f"{x:g}" for x in plot["x"]])  # the values swept, no clutter
            ax.minorticks_off()
        ax.set_xlabel(plot["xlabel"])
    ax.set_ylabel(plot["ylabel"])
    ax.set_title(title, fontsize=10)
    if kind == "bars":  # below the axes: bars reach the top, their labels must stay readable
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1),
                  ncol=min(4, len(plot["series"])), frameon=False)  # fmt: skip
    else:
        ax.legend(fontsize=8, loc="best", framealpha=0.8)
    ax.grid(alpha=0.3)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out.getvalue()

"""The sweep report's picture (accuracy against the swept number, or against model size) and its
copy in TensorBoard's Text tab."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _axis(rows: list[dict[str, Any]], swept: list[str]) -> tuple[str, list[float]] | None:
    """The x axis: the first swept key whose values are all numbers, else the parameter count."""
    for key in swept:
        values = [_number(r["set"].get(key)) for r in rows]
        if all(v is not None for v in values):
            return key, values
    params = [r.get("params") for r in rows]
    if len(set(params)) > 1 and all(isinstance(p, int) for p in params):
        return "parameters", [float(p) for p in params]
    return None


def bars(done: list[dict[str, Any]], swept: list[str], group_by: str | None):
    """One bar per job, ordered by the GROUP key when given and named by the values the job set
    (`sgd`, `adam, 1`), not by its job number; → (rows, labels, the keys the labels show)."""
    keys = ([group_by] if group_by else []) + [k for k in swept if k != group_by]
    if group_by:
        done = sorted(done, key=lambda r: str(r["set"].get(group_by, "")))
    labels = [", ".join(str(r["set"].get(k, "")) for k in keys) or str(r["job"]) for r in done]
    return done, labels, keys


def png(rows: list[dict[str, Any]], swept: list[str], group_by: str | None) -> bytes:
    """The report's plot as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on clusters and CI
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "ok"]
    metric = (
        "test/acc" if any(isinstance(r.get("test/acc"), float) for r in done) else "val/acc_best"
    )
    done = [r for r in done if isinstance(r.get(metric), (int, float))]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    axis = _axis(done, swept) if done else None
    if axis is None:  # nothing numeric varies: one bar per job, named by what it set
        done, labels, keys = bars(done, swept, group_by)
        ax.bar(range(len(done)), [r[metric] for r in done])
        ax.set_xticks(range(len(done)), labels, rotation=30 if len(done) > 4 else 0, ha="right"
                      if len(done) > 4 else "center", fontsize=8)  # fmt: skip
        ax.set_xlabel(", ".join(keys) or "job")
    else:
        key, xs = axis
        series_key = group_by or next((k for k in swept if k != key), None)
        series = dict.fromkeys(r["set"].get(series_key, "") if series_key else "" for r in done)
        for name in series:
            pts = sorted(
                (x, r[metric], r["set"].get(key, r["job"]))
                for x, r in zip(xs, done, strict=True)
                if (r["set"].get(series_key, "") if series_key else "") == name
            )
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name or None)
            if key == "parameters" and not series_key:
                for x, y, _ in pts:
                    ax.annotate(f"{int(x):,}", (x, y), fontsize=7)
        positive = [x for x in xs if x > 0]
        if len(positive) == len(xs) and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        if series_key and len(series) > 1:
            ax.legend(title=series_key, fontsize=8)
    failed = len(rows) - len([r for r in rows if r["status"] == "ok"])
    ax.set_ylabel(metric)
    ax.set_title(f"{len(rows)} jobs" + (f", {failed} failed (not drawn)" if failed else ""))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def to_tensorboard(sweep_dir: Path, text: str) -> None:
    """The report as Markdown in TensorBoard's Text tab (`tensorboard --logdir <sweep>/tb`)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(sweep_dir / "tb"))
    writer.add_text("sweep/report", text)
    writer.close()

"""Sweep reports: one row per job of a multirun folder, as Markdown and CSV (and a plot).

`python -m cnnlab.report outputs/train/multirun/<date>/<time>_<id>` (or `make report DIR=...`);
Hydra also runs it when a sweep ends (`hydra.callbacks.report`). A job without `metrics.json`
is listed as failed, with the last error line of its log, instead of vanishing.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback

COLUMNS = [
    "job",
    "overrides",
    "status",
    "params",
    "val/acc_best",
    "test/acc",
    "best_epoch",
    "wall_s",
    "val/pointing_game",
    "error",
]


def job_row(job: Path) -> dict[str, Any]:
    overrides = (
        yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        if (job / ".hydra" / "overrides.yaml").is_file()
        else []
    )
    row: dict[str, Any] = {"job": job.name, "overrides": " ".join(overrides or []), "error": ""}
    metrics_file = job / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        row.update(status="ok", **{k: metrics.get(k, "") for k in COLUMNS[3:9]})
    else:
        log = job / "train.log"
        errors = (
            [line for line in log.read_text().splitlines() if "ERROR" in line]
            if log.is_file()
            else []
        )
        row.update(
            status="failed", error=errors[-1].split(" - ", 1)[-1] if errors else "no metrics"
        )
    return row


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    jobs = sorted(
        (p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()),
        key=lambda p: int(p.name),
    )
    return [job_row(j) for j in jobs]


def _fmt(column: str, value: Any) -> str:
    if column == "wall_s" and isinstance(value, (int, float)):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and column == "params":
        return f"{value:,}"
    return "" if value is None else str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(c, r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def write(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = collect(sweep_dir)
    (sweep_dir / "report.md").write_text(markdown(rows) + "\n")
    with open(sweep_dir / "report.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


class SweepReport(Callback):
    """Hydra callback: write and print the report when a multirun ends."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write(sweep_dir)
            print(f"\nSweep report ({sweep_dir / 'report.md'}):\n{markdown(rows)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("error: usage: python -m cnnlab.report <multirun folder>", file=sys.stderr)
        sys.exit(1)
    rows = write(Path(args[0]))
    print(markdown(rows))


if __name__ == "__main__":
    main()

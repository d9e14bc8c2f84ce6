"""Sweep reports: one row per job of a multirun folder: Markdown, CSV, a plot, TensorBoard text.

Written by `cnnlab-report DIR` (cnnlab.commands.report) and, after every job and when a sweep
ends, by Hydra's callback (cnnlab.cli.sweep_callback). A job without `metrics.json` is listed as
failed, with the last error line of its log, instead of vanishing. Columns are the keys the sweep
varied; the overrides every job shares are printed once above the table.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml

from cnnlab.core import checkpoint
from cnnlab.core.errors import CTRL_C, SIGTERM_EARLY, SIGTERM_SAVED
from cnnlab.core.files import write_atomic
from cnnlab.core.tables import markdown_table

METRICS = ["params", "val/acc_best", "test/acc", "best_epoch", "wall_s", "val/pointing_game"]
SELECT_BY = "val/acc_best"  # choose by validation, report test: the test set never picks
STATUSES = ("ok", "failed", "interrupted", "not started")
# A sweep over one of these repeats each configuration: the report adds mean ± std over it.
REPEAT_KEYS = ("data.fold", "seed")
SUMMARISED = ["val/acc_best", "test/acc", "test/balanced_acc", "test/macro_f1"]


def _overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


PLAN = "jobs.yaml"  # every job's overrides, written when the sweep starts
INTERRUPTED = (
    SIGTERM_SAVED,
    SIGTERM_EARLY,
    CTRL_C,
)  # the messages RunInterrupted logs to the job's train.log


def _last_error(job: Path) -> str:
    log = job / "train.log"
    errors = [x for x in log.read_text().splitlines() if "ERROR" in x] if log.is_file() else []
    return errors[-1].split(" - ", 1)[-1] if errors else "no metrics.json (crashed or killed)"


def _row(name: str, overrides: list[str]) -> dict[str, Any]:
    return {
        "job": name,
        "overrides": " ".join(overrides),
        "set": dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o),
        "error": "",
    }


def job_row(job: Path, planned: list[str] | None = None) -> dict[str, Any]:
    row = _row(job.name, _overrides(job) or planned or [])
    metrics = checkpoint.read_metrics(job)
    if metrics:
        row.update(status="ok", **{k: metrics.get(k, "") for k in [*METRICS, *SUMMARISED]})
        return row
    error = _last_error(job)
    if error.startswith(INTERRUPTED):
        ckpt = checkpoint.latest(job)
        row.update(status="interrupted", error=f"checkpoint {ckpt}" if ckpt else "no checkpoint")
    else:
        row.update(status="failed", error=error)
    return row


def plan(sweep_dir: Path, config) -> None:
    """jobs.yaml: the overrides of every job a basic sweep will run (Optuna's are sampled as it
    goes), so a sweep that stops early still reports the jobs it never started."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides([*params, *config.hydra.overrides.task])
    (jobs,) = BasicSweeper.split_arguments(overrides, None)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(sweep_dir / PLAN, yaml.safe_dump([list(j) for j in jobs]))


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    found = {int(p.name): p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()}
    planned = yaml.safe_load((sweep_dir / PLAN).read_text()) if (sweep_dir / PLAN).is_file() else []
    rows = []
    for n in sorted(set(found) | set(range(len(planned)))):
        wanted = planned[n] if n < len(planned) else None
        if n in found:
            rows.append(job_row(found[n], wanted))
        else:
            rows.append({**_row(str(n), wanted or []), "status": "not started"})
    return rows


def swept_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Override keys whose value differs between jobs (or some jobs lack), first-seen order."""
    keys = list(dict.fromkeys(k for r in rows for k in r["set"]))
    return [k for k in keys if len({r["set"].get(k) for r in rows}) > 1]


def common_overrides(rows: list[dict[str, Any]]) -> list[str]:
    swept = set(swept_keys(rows))
    return [f"{k}={v}" for k, v in (rows[0]["set"].items() if rows else []) if k not in swept]


def best_per(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """For each value of `key`, the finished job with the highest validation accuracy."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        value = r["set"].get(key)
        if r["status"] != "ok" or not isinstance(r.get(SELECT_BY), (int, float)):
            continue
        if value not in best or r[SELECT_BY] > best[value][SELECT_BY]:
            best[value] = r
    order = list(dict.fromkeys(r["set"].get(key) for r in rows))
    return [best[v] for v in order if v in best]


def _fmt(column: str, value: Any) -> str:
    if column == "wall_s" and isinstance(value, (int, float)):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and column == "params":
        return f"{value:,}"
    if isinstance(value, str) and len(value) > 8:  # Optuna's 0.0011155792840695788 → 0.001116
        try:
            return f"{float(value):.4g}"
        except ValueError:
            pass
    return "" if value is None else str(value)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    metrics = [m for m in METRICS if any(r.get(m) not in ("", None) for r in rows)]
    failed = any(r["status"] != "ok" for r in rows)
    return ["job", *swept_keys(rows), "status", *metrics, *(["error"] if failed else [])]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    def cell(r, c):
        return _fmt(c, r[c] if c in r else r["set"].get(c, ""))

    return markdown_table(columns, [[cell(r, c) for c in columns] for r in rows]).split("\n")


def markdown(rows: list[dict[str, Any]], group_by: str | None = None) -> str:
    lines = []
    common = common_overrides(rows)
    if common:
        lines += [f"Every job: `{' '.join(common)}`", ""]
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    extra = "".join(f", {counts[s]} {s}" for s in STATUSES[2:] if counts[s])
    lines += [f"{len(rows)} jobs, {counts['ok']} finished, {counts['failed']} failed{extra}", ""]
    lines += _table(rows, _columns(rows))
    for key in (k for k in REPEAT_KEYS if k in swept_keys(rows)):
        lines += ["", *over_repeats(rows, key)]
    if group_by:
        best = best_per(rows, group_by)
        cols = [c for c in _columns(best) if c not in ("status", "error")] if best else []
        cols = [group_by, *[c for c in cols if c != group_by]]
        lines += ["", f"Best job per `{group_by}` (chosen by {SELECT_BY}):", ""]
        lines += _table(best, cols)
    return "\n".join(lines)


def over_repeats(rows: list[dict[str, Any]], key: str) -> list[str]:
    """Mean ± sample standard deviation of the finished jobs, per configuration (the other swept
    keys), over the values of `key` (folds or seeds)."""
    others = [k for k in swept_keys(rows) if k not in REPEAT_KEYS]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault(tuple(r["set"].get(k) for k in others), []).append(r)
    metrics = [m for m in SUMMARISED if any(isinstance(r.get(m), (int, float)) for r in rows)]
    lines = [f"Mean ± std over `{key}` (finished jobs):", ""]
    table = []
    for config, members in groups.items():
        cells = [str(v) for v in config] + [str(len(members))]
        for m in metrics:
            values = [r[m] for r in members if isinstance(r.get(m), (int, float))]
            cells.append(_mean_std(values))
        table.append(cells)
    return lines + markdown_table([*others, "jobs", *metrics], table).split("\n")


def _mean_std(values: list[float]) -> str:
    if not values:
        return ""
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {var**0.5:.4f}"


def _csv(rows: list[dict[str, Any]]) -> str:
    swept = swept_keys(rows)
    fields = ["job", "overrides", *swept, "status", *METRICS, "error"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**{k: r["set"].get(k, "") for k in swept}, **r} for r in rows)
    return out.getvalue()


def write(
    sweep_dir: Path, group_by: str | None = None, plot: bool = True, tensorboard: bool = False
) -> list[dict[str, Any]]:
    """report.md, report.csv and report.png in `sweep_dir`; returns the rows."""
    rows = collect(sweep_dir)
    text = markdown(rows, group_by)
    write_atomic(sweep_dir / "report.md", text + "\n")
    write_atomic(sweep_dir / "report.csv", _csv(rows))
    if plot or tensorboard:
        from cnnlab.analysis import report_plot

        if plot:
            png = report_plot.png(rows, swept_keys(rows), group_by)
            write_atomic(sweep_dir / "report.png", png)
        if tensorboard:
            report_plot.to_tensorboard(sweep_dir, text)
    return rows

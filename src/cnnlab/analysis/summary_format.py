"""Render an arithmetic Report as a terminal table, Markdown or CSV."""

from __future__ import annotations

import csv
import io

from cnnlab.analysis.arithmetic import Report, numel

COLUMNS = ["layer", "type", "output (C×H×W)", "activations", "params", "MFLOPs"]


def human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def rows(report: Report) -> list[list[str]]:
    out = [
        [
            "input",
            "",
            "×".join(map(str, report.input_shape)),
            f"{numel(report.input_shape):,}",
            "0",
            "0",
        ]
    ]
    for r in report.rows:
        out.append(
            [
                r.name,
                r.kind,
                "×".join(map(str, r.shape)),
                f"{r.activations:,}",
                f"{r.params:,}",
                f"{r.flops / 1e6:,.2f}",
            ]
        )
    return out


def totals(report: Report, batch_size: int) -> list[tuple[str, str]]:
    lines = [
        ("parameters", f"{report.params:,}"),
        ("activations per image", f"{report.activations:,} values"),
        ("FLOPs per image (torch counter, 2 per multiply-add)", human(report.flops, "FLOPs")),
        (
            "multiply-adds per image (what the lecture and torchvision call FLOPs)",
            human(report.macs, "MACs"),
        ),
    ]
    lines += [
        (f"{k}, batch {batch_size}" if "activations" in k or "training" in k else k, human(v, "B"))
        for k, v in report.memory(batch_size).items()
    ]
    return lines


def markdown(report: Report, batch_size: int) -> str:
    table = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    table += ["| " + " | ".join(r) + " |" for r in rows(report)]
    table += ["", "| total | |", "|---|---|"]
    table += [f"| {k} | {v} |" for k, v in totals(report, batch_size)]
    return "\n".join(table)


def to_csv(report: Report, batch_size: int) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    writer.writerows(rows(report))
    writer.writerows([[k, v] for k, v in totals(report, batch_size)])
    return buf.getvalue()


def terminal(report: Report, batch_size: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"input {'×'.join(map(str, report.input_shape))}")
    for i, col in enumerate(COLUMNS):
        table.add_column(col, no_wrap=True, justify="right" if i >= 3 else "left")
    for r in rows(report):
        table.add_row(*r)
    console = Console(width=max(Console().width, 110))
    console.print(table)
    for k, v in totals(report, batch_size):
        console.print(f"{k}: [bold]{v}[/bold]")

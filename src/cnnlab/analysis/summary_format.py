"""Render an arithmetic Report as a terminal table, Markdown or CSV."""

from __future__ import annotations

import csv
import io

from cnnlab.analysis.arithmetic import Report, numel
from cnnlab.core.tables import markdown_table

COLUMNS = ["layer", "type", "output (C×H×W)", "activations", "params", "MFLOPs", "receptive field",
           "jump"]  # fmt: skip


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
            "1×1",
            "1",
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
                f"{r.field.size}×{r.field.size}" if r.field else "",
                str(r.field.jump) if r.field else "",
            ]
        )
    return out


def totals(report: Report, batch_size: int) -> list[tuple[str, str]]:
    lines = [("parameters", f"{report.params:,}")]
    if report.unused:
        lines.append(
            (
                "of which in layers the forward pass does not run (e.g. a training-only "
                "auxiliary classifier)",
                ", ".join(f"{name} {params:,}" for name, params in report.unused),
            )
        )
    lines += [(f"note {i + 1}", note) for i, note in enumerate(report.notes)]
    lines += [
        ("activations per image", f"{report.activations:,} values"),
        ("FLOPs per image (torch counter, 2 per multiply-add)", human(report.flops, "FLOPs")),
        (
            "multiply-adds per image (what the lecture and torchvision call FLOPs)",
            human(report.macs, "MACs"),
        ),
    ]
    memory = report.memory(batch_size)
    lines += [(_memory_label(k, batch_size), human(v, "B")) for k, v in memory.items()]
    return lines


def _memory_label(key: str, batch_size: int) -> str:
    """Report.memory's line name, with the batch it was computed for where it depends on it."""
    return f"{key}, batch {batch_size}" if "activations" in key or "training" in key else key


def markdown(report: Report, batch_size: int) -> str:
    layers = markdown_table(COLUMNS, rows(report))
    return f"{layers}\n\n{markdown_table(['total', ''], totals(report, batch_size))}"


def to_csv(report: Report, batch_size: int) -> str:
    """Plain numbers a spreadsheet reads as numbers (no thousands separators, no units in the
    cells); the totals follow as `name,value,unit` rows."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    writer.writerow(["input", "", "×".join(map(str, report.input_shape)),
                     numel(report.input_shape), 0, 0, 1, 1])  # fmt: skip
    writer.writerows([r.name, r.kind, "×".join(map(str, r.shape)), r.activations, r.params,
                      round(r.flops / 1e6, 4), r.field.size if r.field else "",
                      r.field.jump if r.field else ""] for r in report.rows)  # fmt: skip
    writer.writerow([])
    writer.writerow(["total", "value", "unit"])
    writer.writerows([("parameters", report.params, ""),
                      ("activations per image", report.activations, "values"),
                      ("FLOPs per image (torch counter, 2 per multiply-add)", report.flops,
                       "FLOPs"),
                      ("multiply-adds per image", report.macs, "MACs")])  # fmt: skip
    writer.writerows([name, params, "parameters, not run by the forward pass"]
                     for name, params in report.unused)  # fmt: skip
    writer.writerows((_memory_label(k, batch_size), v, "B")
                     for k, v in report.memory(batch_size).items())  # fmt: skip
    return buf.getvalue()


NAME_MIN = 8  # characters: layer names and types fold onto more lines below this


def terminal(report: Report, batch_size: int, console=None) -> None:
    """A Rich table that never cuts a number: figures keep their full width and layer names
    and types fold instead. A pipe or a file gets the width the table needs, unfolded."""
    from rich.console import Console
    from rich.table import Table

    # An 80-column window holds the figures: the receptive field as one number (its side, the
    # field being square), no jump; Markdown and CSV have both.
    columns = [*COLUMNS[:2], COLUMNS[2].replace(" ", "\n"), *COLUMNS[3:6], "RF"]
    sides = ["1", *(str(r.field.size) if r.field else "" for r in report.rows)]  # input first
    body = [[*r[:6], side] for r, side in zip(rows(report), sides, strict=True)]
    widths = [max(*map(len, col.splitlines()), *(len(r[i]) for r in body))
              for i, col in enumerate(columns)]  # fmt: skip
    console = console or Console()
    needed = sum(widths) + 3 * len(columns) + 1  # "│ " … " │" borders and padding
    smallest = needed - widths[0] - widths[1] + 2 * NAME_MIN
    console.width = max(console.width, smallest) if console.is_terminal else max(needed, 80)
    table = Table(title=f"input {'×'.join(map(str, report.input_shape))}")
    for i, col in enumerate(columns):
        if i < 2:  # layer, type: fold when the window is narrow
            table.add_column(col, overflow="fold", min_width=min(NAME_MIN, widths[i]))
        else:
            table.add_column(col, no_wrap=True, min_width=widths[i], justify="right")
    for r in body:
        table.add_row(*r)
    console.print(table)
    figures = [(k, v) for k, v in totals(report, batch_size) if len(v) <= 20]
    lines = Table.grid(padding=(0, 1))  # the totals: wording wraps, figures stay whole
    lines.add_column(overflow="fold", ratio=1)
    lines.add_column(no_wrap=True, style="bold", min_width=max(len(v) for _, v in figures))
    for k, v in figures:
        lines.add_row(f"{k}:", v)
    console.print(lines)
    for k, v in totals(report, batch_size):  # sentences: the unused layers, notes
        if (k, v) not in figures:
            console.print(f"{k}: {v}")

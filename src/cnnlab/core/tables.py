"""The one Markdown table writer: summaries, sweep reports, the zoo, evaluation reports, the
lecture's results and TensorBoard's Text tab all print through it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A GitHub-flavoured Markdown table; cells are printed with `str`."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)

"""Sweep reports from the command line: one row per job of a multirun folder (Markdown, CSV, a
plot, TensorBoard text). `make report DIR=outputs/train/multirun/<date>/<time>_<id>
[GROUP=transfer]` or `cnnlab-report DIR [--group-by KEY]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnlab.analysis.sweep_report import markdown, write


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cnnlab-report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (holds 0/, 1/, …)")
    parser.add_argument("--group-by", help="also list the best job per value of this key")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir() or not any(
        p.name.isdigit() for p in args.sweep_dir.iterdir() if p.is_dir()
    ):
        print(
            f"error: {args.sweep_dir} is not a multirun folder (no job folders 0/, 1/, …)",
            file=sys.stderr,
        )
        sys.exit(1)
    rows = write(args.sweep_dir, args.group_by, tensorboard=True)
    print(markdown(rows, args.group_by))
    print(f"\nwrote {args.sweep_dir}/report.md, report.csv, report.png and tb/ (TensorBoard text)")


if __name__ == "__main__":
    main()

"""The lecture's claims measured: `make lecture [ONLY=residual,batchnorm]` or `cnnlab-lecture
[--only CLAIMS] [--out DIR] [overrides…]`: each claim's sweep, its verdict, one report (the
claims and how they are judged: cnnlab.lecture)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from cnnlab.core.errors import UserError
from cnnlab.core.files import write_atomic
from cnnlab.lecture import claims
from cnnlab.lecture.run import Stopped, run


def root() -> Path:
    """Where outputs/ and data/ live: CNNLAB_ROOT when set, as for every other command
    (conf/paths/default.yaml), else the folder it runs from."""
    return Path(os.environ.get("CNNLAB_ROOT") or ".")


CLAIMS = "claims.json"  # in a lecture folder: the claims it was made with


def _claims_of(out: Path) -> list[str]:
    """The claims a lecture folder was made with ([]: a folder from before the file existed)."""
    try:
        return list(json.loads((out / CLAIMS).read_text()))
    except (OSError, ValueError):
        return []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cnnlab-lecture", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated claims (default: all)")
    parser.add_argument(
        "--out", type=Path, help="default: $CNNLAB_ROOT/outputs/lecture/<date>_<time>"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("CNNLAB_DATA") or root() / "data")
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: recompute the verdicts and report from the sweeps in --out",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every sweep")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    try:
        unknown = [n for n in only if n not in claims.BY_NAME]
        if unknown:
            raise UserError(f"unknown claim {unknown[0]!r}; valid: {', '.join(claims.BY_NAME)}")
        out = args.out or root() / "outputs" / "lecture" / f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
        if args.report_only and args.out is None:
            raise UserError("--report-only needs --out: the lecture folder to report on")
        if args.report_only and not out.is_dir():
            raise UserError(f"{out} holds no lecture run (no such folder)")
        made_with = _claims_of(out)  # an earlier run of this folder: resumed, or reported
        if not args.report_only and out.exists() and any(out.iterdir()) and not made_with:
            raise UserError(f"{out} already holds files but no lecture run to resume (no "
                            f"{CLAIMS}); choose another --out")  # fmt: skip
        if not only:  # the claims the folder was made with (ONLY=…), else all
            only = made_with
        only = only or list(claims.BY_NAME)
        if not args.report_only:
            out.mkdir(parents=True, exist_ok=True)
            write_atomic(out / CLAIMS, json.dumps(only))
        complete = run(only, args.overrides, out, args.data_dir, again=args.report_only)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except Stopped as stop:
        print(f"error: the lecture was stopped ({stop}); {out} keeps every sweep that finished "
              f"and the stopped one's checkpoints: run the same command to resume, or add "
              f"--report-only to report what is there", file=sys.stderr)  # fmt: skip
        sys.exit(stop.exit_code)
    except OSError as err:
        print(f"error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {out / 'report.md'} (and figures, tb/ for TensorBoard)")
    if not complete:
        sys.exit(1)  # a claim without a verdict: its sweep failed


if __name__ == "__main__":
    main()

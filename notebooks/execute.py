"""`make notebooks`: every notebook in notebooks/ run top to bottom in a Jupyter kernel (offline,
in a fresh $CNNLAB_ROOT, as the tests run them), its executed copy (outputs included) written to
docs/notebooks/ for the site, with a cell under the title that names the machine, the date and
the versions it ran on. The sources in notebooks/ stay without outputs."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "notebooks"
RENDERED = REPO / "docs" / "notebooks"


def execute(notebook: nbformat.NotebookNode, folder: Path) -> None:
    """Run `notebook` in place in a python3 kernel whose working folder is `folder`."""
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()  # fmt: skip


def provenance(seconds: float) -> str:
    import torch

    from cnnlab import __version__
    from cnnlab.cli.machine import cpu_cores, cpu_model

    return (f"*Executed by `make notebooks` on {date.today():%Y-%m-%d}: {cpu_model()}, "
            f"{cpu_cores()} CPU cores, no GPU; Python {platform.python_version()}, torch "
            f"{torch.__version__}, cnnlab {__version__}; {seconds:.0f} s. The outputs below "
            "are that run's; the source, `notebooks/` in the repository, is stored without "
            "them.*")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    args = parser.parse_args(argv)
    paths = [SOURCES / n for n in args.names] or sorted(SOURCES.glob("*.ipynb"))
    RENDERED.mkdir(parents=True, exist_ok=True)
    data = os.environ.setdefault("CNNLAB_DATA", str(REPO / "data"))
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory(prefix="cnnlab-notebook-") as root:
            os.environ["CNNLAB_ROOT"] = root
            start = time.perf_counter()
            execute(notebook, Path(root))
            seconds = time.perf_counter() - start
        stamp = nbformat.v4.new_markdown_cell(provenance(seconds))
        notebook.cells.insert(1, stamp)  # under the title cell
        nbformat.write(notebook, RENDERED / path.name)
        print(f"{path.name}: {seconds:.0f} s → {RENDERED / path.name} (data: {data})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared by the bench modules: repository, repetitions, table rows, config composition."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REPS = int(os.environ.get("BENCH_REPS", "3"))
rows: list[tuple[str, str, str, str]] = []  # what, cnnlab, plain, ratio


def stats(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f} ({min(values):,.1f}–{max(values):,.1f})"


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from cnnlab.cli import resolvers  # noqa: F401
    from cnnlab.cli.configs import CONFIG_DIR

    tmp = tempfile.mkdtemp()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return hydra_compose(
            "train", overrides=[f"paths.output_dir={tmp}", f"paths.root_dir={REPO}", *overrides]
        )

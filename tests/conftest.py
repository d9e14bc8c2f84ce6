"""Fixtures that compose the real Hydra config, exactly as the entry points do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig

from cnnlab import resolvers  # noqa: F401 - the configs use cnnlab.* resolvers
from cnnlab.train import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
GROUPS = sorted(p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir() and p.name != "hydra")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One data folder for the session: the MNIST sample is written once, then read by all."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def compose(tmp_path, data_dir):
    """compose("model=mlp", ...) → the train config with paths inside this test's tmp_path."""

    def _compose(*overrides: str, config_name: str = "train") -> DictConfig:
        paths = [
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'run'}",
            f"paths.data_dir={data_dir}",
        ]
        with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
            return hydra_compose(config_name, overrides=[*paths, *overrides])

    return _compose


@pytest.fixture
def cli(tmp_path, data_dir):
    """Run `python -m cnnlab.<entry> args...` in a subprocess with outputs under tmp_path."""

    def _run(
        entry: str, *args: str, timeout: float = 600, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "CNNLAB_ROOT": str(tmp_path),
            "CNNLAB_DATA": str(data_dir),
            **(env or {}),
        }
        return subprocess.run(
            [sys.executable, "-m", f"cnnlab.{entry}", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            # A shell's background job (`make test &`) ignores SIGINT and its children inherit
            # that; give them the default, so Ctrl-C behaves as in a terminal.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    return _run

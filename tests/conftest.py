"""Fixtures that compose the real Hydra config, exactly as the entry points do."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

# Imported before any test: Lightning's log handler then binds to pytest's session-long stream,
# not to the stream of the first in-process `command` test (closed when that test ends).
import lightning  # noqa: F401
import pytest
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from cnnlab.cli import resolvers  # noqa: F401 - the configs use cnnlab.* resolvers
from cnnlab.cli.configs import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test workers share the cores (make test: one per core): one thread each, and the
    # same for the processes they start, instead of every worker spreading over every core.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def pytest_configure(config) -> None:
    """The notices cnnlab's modules filter for users when imported (pytest resets filters per
    test): the same patterns, from those modules."""
    from cnnlab.data.shards import LENGTH_NOTICE
    from cnnlab.training.fit import LEAFSPEC

    config.addinivalue_line("filterwarnings", f"ignore:{LEAFSPEC}:FutureWarning")
    config.addinivalue_line("filterwarnings", f"ignore:{LENGTH_NOTICE}")


GROUPS = sorted(p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir() and p.name != "hydra")


def options(group: str) -> list[str]:
    """A group's options: its files, less the bases they start from (_base.yaml)."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml") if p.stem[0] != "_")


# Networks whose one CPU step costs seconds here (tens of millions of parameters, or a 224-px
# minimum input): their registry-wide cases are `slow` (CI still runs them; test-fast does not).
HEAVY_MODELS = {
    "alexnet_tv", "convnext_tiny", "efficientnet_b0", "googlenet", "inception_v3",
    "mobilenet_v3_large", "resnet50", "resnet101", "resnet152", "vgg11", "vgg13", "vgg16",
    "vgg16_bn", "vgg16_tv", "vgg19", "vit_b_16",
}  # fmt: skip


def model_options() -> list:
    """Every conf/model option, the heavy ones marked slow."""
    return [
        pytest.param(m, marks=pytest.mark.slow) if m in HEAVY_MODELS else m
        for m in options("model")
    ]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One data folder for the session: the MNIST sample is written once, then read by all."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory, data_dir) -> Path:
    """One short run of the default recipe (ConvNet, MNIST sample, 1 epoch) tested at the end,
    with its evaluation report: the checkpoint that predict, export and eval tests share (copy it
    before changing it). Once per test process."""
    from cnnlab.commands.train import train

    run = tmp_path_factory.mktemp("digits_run")
    overrides = [f"paths.root_dir={run}", f"paths.output_dir={run}", f"paths.data_dir={data_dir}",
                 "debug=test", "test=true"]  # fmt: skip
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = hydra_compose("train", overrides=overrides)
    train(cfg)
    return run


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
def quick(compose):
    """quick("data=fake", ...) → compose("debug=test", ...): CPU, one epoch, quiet, no test pass."""

    def _quick(*overrides: str) -> DictConfig:
        return compose("debug=test", *overrides)

    return _quick


@pytest.fixture
def cli(tmp_path, data_dir):
    """`python -m cnnlab.commands.<entry> args...` in a subprocess, outputs under tmp_path."""

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
            [sys.executable, "-m", f"cnnlab.commands.{entry}", *args],
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


@pytest.fixture
def command(tmp_path, data_dir, monkeypatch, capfd):
    """`cnnlab-<entry> args...` run in this process: the real `main()` (Hydra, one-line errors,
    exit codes) without a new interpreter's ~8 s of imports. Use `cli` for what needs a process
    of its own (signals, kills, DDP ranks, a plugin missing, submitit jobs that re-import the
    entry point)."""

    def _run(entry: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        for key, value in {
            "CNNLAB_ROOT": str(tmp_path),
            "CNNLAB_DATA": str(data_dir),
            **(env or {}),
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "argv", [f"cnnlab-{entry}", *args])
        capfd.readouterr()
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        # A command whose Hydra job logging is off (summary, explain) disables every logger that
        # exists; a real process ends there, this one goes on to the next test.
        loggers = [lg for lg in logging.Logger.manager.loggerDict.values()
                   if isinstance(lg, logging.Logger)]  # fmt: skip
        disabled = [lg.disabled for lg in loggers]
        code = 0
        try:
            importlib.import_module(f"cnnlab.commands.{entry}").main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        except Exception:  # noqa: BLE001 - as the interpreter would: traceback, exit 1
            traceback.print_exc()
            code = 1
        finally:
            GlobalHydra.instance().clear()
            for handler in root.handlers:  # Hydra's: bound to this test's streams and files
                if handler not in handlers:
                    handler.close()
            root.handlers[:], root.level = handlers, level
            for lg, was in zip(loggers, disabled, strict=True):
                lg.disabled = was
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess([entry, *args], code, out, err)

    return _run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(entry: str, args: list[str], root: Path, data_dir: Path) -> Iterator[tuple[str, list]]:
    """`cnnlab-<entry> args…` as a real server in its own process on a free port: yields its URL
    and the lines it printed up to then, once it says where it listens (CNNLAB_ROOT=root);
    stopped afterwards."""
    port = free_port()
    env = {**os.environ, "CNNLAB_ROOT": str(root), "CNNLAB_DATA": str(data_dir),
           "GRADIO_ANALYTICS_ENABLED": "False"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", f"cnnlab.commands.{entry}", *args, f"port={port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in proc.stdout:  # blocks until the server says where it listens, or exits
        seen.append(line)
        if f"127.0.0.1:{port}" in line and "Running on" in line:
            break
    else:
        pytest.fail(f"{entry} ended before serving:\n" + "".join(seen[-30:]))
    # Read on, or a full pipe (a log line per request) would block the server mid-answer.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/", seen
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture
def demo_server(digits_run, tmp_path, data_dir):
    """`cnnlab-demo` on the shared digits checkpoint: yields (its URL, the CNNLAB_ROOT its run
    folder is under); stopped after the test."""
    args = [f"ckpt_path={digits_run / 'checkpoints' / 'best.ckpt'}", "examples=2", "run_id=demo"]
    with serve("demo", args, tmp_path, data_dir) as (url, _):
        yield url, tmp_path

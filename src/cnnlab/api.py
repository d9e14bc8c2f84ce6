"""cnnlab from Python (a notebook, a script): the commands' own code path without a command line.

`config(*overrides)` composes and checks a config; `summary(*overrides)` is `make summary`'s
arithmetic; `augment_preview(*overrides)` is `make augment-preview`'s picture;
`train(*overrides)` trains like `cnnlab-train` and returns a `Run`;
`evaluate(ckpt, *overrides)` is `cnnlab-eval`; `predict(ckpt, files)` reads files as `predict`
does. Each call runs the command's task through Hydra exactly as the command line does (the
same run folder and `.hydra/` files, the run lock, the config check; `config_dir` is
`--config-dir`). A mistake raises `UserError` carrying the command line's one line; nothing
calls `sys.exit`; Hydra's global state is cleared after each call, so a kernel can call them any
number of times, and the caller's logging is put back as it was. A Ctrl-C (a kernel interrupt)
raises `RunInterrupted` after the run saved its checkpoint: the same call with `run_id=` and
`ckpt_path=last` resumes it, as on the command line.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.core.errors import UserError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from cnnlab.analysis.arithmetic import Report
    from cnnlab.inference.loading import LoadedModel


@dataclass(frozen=True)
class Run:
    """A finished training run: its folder, its final numbers (metrics.json) and checkpoints."""

    folder: Path
    metrics: dict[str, Any] = field(repr=False)

    @property
    def best_checkpoint(self) -> Path | None:
        """checkpoints/best.ckpt (the monitored metric's best epoch), None if none was saved."""
        return self._checkpoint("BEST")

    @property
    def last_checkpoint(self) -> Path | None:
        """checkpoints/last.ckpt (the weights training ended with), None if none was saved."""
        return self._checkpoint("LAST")

    def _checkpoint(self, which: str) -> Path | None:
        from cnnlab.core import checkpoint

        path = checkpoint.in_run(self.folder, getattr(checkpoint, which))
        return path if path.is_file() else None

    def load(self, which: str = "best", map_location: str = "cpu") -> LoadedModel:
        """The `cnnlab.load` model of the best (or "last") checkpoint."""
        from cnnlab import load

        path = {"best": self.best_checkpoint, "last": self.last_checkpoint}.get(which)
        if path is None:
            raise UserError(f"{self.folder} has no {which} checkpoint; valid: best, last")
        return load(path, map_location)


def config(*overrides: str, config_dir: str | Path | None = None, command: str = "train"):
    """The composed, checked config of `cnnlab-<command> overrides…` (not run)."""
    from hydra import compose

    from cnnlab.cli import schema

    with _hydra(config_dir, command):
        cfg = _one_line(lambda: compose(command, overrides=list(overrides)))
    _one_line(lambda: schema.validate(cfg))
    return cfg


def summary(*overrides: str, config_dir: str | Path | None = None) -> Report:
    """`make summary`: the network's arithmetic (per layer: output shape, activations,
    parameters, multiply-adds; the memory they add up to), counted on the meta device."""
    from cnnlab.commands.summary import report_for

    return _one_line(lambda: report_for(config(*overrides, config_dir=config_dir,
                                               command="summary")))  # fmt: skip


def augment_preview(*overrides: str, count: int = 32, config_dir: str | Path | None = None):
    """`make augment-preview`: `count` training images as the network sees them (the whole
    training pipeline, seeded by `seed`), captioned with their labels; a PIL image."""
    from PIL import Image

    from cnnlab.commands.augment_preview import grid

    cfg = config(*overrides, config_dir=config_dir)
    return _one_line(lambda: Image.fromarray(grid(cfg, count)))


def train(*overrides: str, config_dir: str | Path | None = None, quiet: bool = False) -> Run:
    """`cnnlab-train overrides…`; returns the finished Run. `quiet=True` prints nothing but
    cnnlab's warnings and errors: no progress bar, model summary, test table, info lines,
    library warnings or run-folder line (a notebook that trains many small runs); the run
    folder holds the same files."""
    from cnnlab.commands.train import train as fit
    from cnnlab.commands.train import where_it_went
    from cnnlab.core import checkpoint

    def task(cfg: DictConfig) -> Run:
        folder = Path(cfg.paths.output_dir)
        if not quiet:
            metrics, _ = fit(cfg)
            print(where_it_went(str(folder)), flush=True)
        else:  # inside the job: Hydra has set up its logging by now
            _without_printing_callbacks(cfg)
            with _silenced():
                metrics, _ = fit(cfg, verbose=False)
        return Run(folder, checkpoint.read_metrics(folder) or metrics)

    return _run("train", task, overrides, config_dir)


# What a quiet run turns down to warnings: Lightning's banners and cnnlab's data report.
QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "cnnlab")


def _without_printing_callbacks(cfg: DictConfig) -> None:
    from omegaconf import open_dict

    with open_dict(cfg):
        for name in ("progress_bar", "model_summary"):
            if cfg.get("callbacks") and name in cfg.callbacks:
                cfg.callbacks[name] = None
        cfg.trainer.enable_progress_bar = False  # else Lightning adds its own bar back


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    import warnings

    import lightning.pytorch  # noqa: F401 - its import sets its loggers' levels: first, then ours

    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for logger in loggers:
                logger.setLevel(logging.WARNING)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def evaluate(
    ckpt_path: str | Path, *overrides: str, config_dir: str | Path | None = None
) -> dict[str, float]:
    """`cnnlab-eval ckpt_path=… overrides…`: the metrics (the report is in its run folder)."""
    from cnnlab.commands.eval import evaluate as run_eval

    return _run("eval", run_eval, (f"ckpt_path={ckpt_path}", *overrides), config_dir)


def embed(*overrides: str, config_dir: str | Path | None = None) -> dict[str, Any]:
    """`cnnlab-embed overrides…`: {split: (features (N, D) array, labels (N,) array)}, kept in
    `paths.feature_cache` and the run folder's `features/` (docs/features.md)."""
    from cnnlab.commands.embed import embed as run_embed
    from cnnlab.features.store import SplitFeatures

    folders = _run("embed", run_embed, overrides, config_dir)
    return {split: SplitFeatures(folder).read() for split, folder in folders.items()}


def predict(
    ckpt_path: str | Path, files: Sequence[str | Path], config_dir: str | Path | None = None
) -> list[tuple[str, str, float]]:
    """Each image file's most likely class and its probability, read as `predict` reads them."""
    from cnnlab import load

    model = load(ckpt_path, config_dir=config_dir)
    probs = model.predict_files(files)
    best, index = probs.max(1)
    return [(str(f), model.class_names[int(i)], float(p))
            for f, i, p in zip(files, index, best, strict=True)]  # fmt: skip


def _run(command: str, task: Callable, overrides: Sequence[str], config_dir) -> Any:
    """Hydra's run of `task` over `command`'s config, as `@hydra.main` does it."""
    from hydra.core.global_hydra import GlobalHydra

    from cnnlab.cli.configs import checked
    from cnnlab.cli.runner import in_job
    from cnnlab.core import run_lock

    def fail(line: str) -> None:
        raise UserError(line)

    def job(cfg: DictConfig) -> tuple[Any, UserError | None]:
        # Returned, not raised: Hydra would print "Error executing job…" over the one line.
        try:
            return in_job(checked(task), fail=fail)(cfg), None
        except UserError as err:
            return None, err

    try:
        with _hydra(config_dir, command):
            done = _one_line(lambda: GlobalHydra.instance().hydra.run(
                config_name=command, task_function=job, overrides=list(overrides)))  # fmt: skip
    finally:
        run_lock.release_all()  # a kernel goes on: no run keeps its lock
    result, error = done.return_value
    if error is not None:
        raise error
    return result


@contextlib.contextmanager
def _hydra(config_dir, command: str) -> Iterator[None]:
    """Hydra initialized over cnnlab's configs (and the project's), cleared afterwards; the
    caller's logging as it was before."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cnnlab.cli import resolvers, user_configs
    from cnnlab.cli.configs import CONFIG_DIR
    from cnnlab.core.targets import project_configs

    if config_dir is not None and not Path(config_dir).is_dir():
        raise UserError(f"config_dir={config_dir} is not a folder")
    user_configs.register()
    resolvers.new_run()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # A command with Hydra's job logging off disables every logger that exists; a kernel goes on.
    loggers = [lg for lg in logging.Logger.manager.loggerDict.values()
               if isinstance(lg, logging.Logger)]  # fmt: skip
    disabled = [lg.disabled for lg in loggers]
    GlobalHydra.instance().clear()
    try:
        with (
            project_configs(config_dir),
            initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR, job_name=command),
        ):
            yield
    finally:
        GlobalHydra.instance().clear()
        for added in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(added)
            added.close()
        root.handlers[:], root.level = handlers, level
        for logger, was in zip(loggers, disabled, strict=True):
            logger.disabled = was


def _one_line(call: Callable[[], Any]) -> Any:
    """`call()`, a user or config failure raised as UserError with the command line's line."""
    from cnnlab.cli.runner import FAILURES, one_line

    try:
        return call()
    except UserError:
        raise
    except FAILURES as err:
        line = one_line(err)
        if line is None:
            raise
        raise UserError(line) from err

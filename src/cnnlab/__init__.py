"""cnnlab: a PyTorch Lightning + Hydra lab for image classification with convolutional networks.

From Python (a notebook): `cnnlab.train("model=mlp")` trains like `make train` and returns a
`Run`; `cnnlab.config(...)`, `cnnlab.summary(...)`, `cnnlab.augment_preview(...)`,
`cnnlab.evaluate(ckpt)` and `cnnlab.predict(ckpt, files)` are the other commands;
`cnnlab.load(path)` returns a trained checkpoint's network, class names and preprocessing. A
mistake raises `cnnlab.UserError` with the command line's one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnlab.inference.loading import LoadedModel

from cnnlab.api import Run, augment_preview, config, embed, evaluate, predict, summary, train
from cnnlab.core.errors import RunInterrupted, UserError

__all__ = [
    "Run",
    "RunInterrupted",
    "UserError",
    "__version__",
    "augment_preview",
    "config",
    "embed",
    "evaluate",
    "load",
    "predict",
    "summary",
    "train",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cnnlab")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "0+unknown"


__version__ = _version()


def load(path, map_location="cpu", config_dir=None) -> LoadedModel:
    """A checkpoint's network in eval mode, with its class names and preprocessing (no Hydra).
    Only cnnlab's own builders are rebuilt, and those of `config_dir` (a project's configs)."""
    from cnnlab.inference.loading import load as _load  # torch and Lightning only when asked for

    return _load(path, map_location, config_dir)

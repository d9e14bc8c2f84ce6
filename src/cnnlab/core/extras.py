"""The optional packages behind some features (pyproject.toml's extras) and the one line that
installs each. The config check says it before torch loads (`check`, from `cli.schema`); the
feature's own import (`need`) says the same line where a package is found but cannot be loaded."""

from __future__ import annotations

import importlib
from importlib.util import find_spec
from types import ModuleType

from omegaconf import DictConfig, OmegaConf

from cnnlab.core.errors import UserError

INSTALL = {
    "timm": "timm models need timm: pip install 'cnnlab[timm]' (make install has every extra)",
    "datasets": (
        "data=hf needs Hugging Face datasets: pip install 'cnnlab[hf]' (make install has it)"
    ),
    "litdata": "shards need LitData: pip install 'cnnlab[shards]' (make install has every extra)",
    "gradio": (
        "make demo and make playground need Gradio: pip install 'cnnlab[demo]' "
        "(make install has it)"
    ),
}
# A config's `_target_` → the package it imports.
TARGETS = {
    "cnnlab.models.timm_models.timm_model": "timm",
    "cnnlab.data.sources.hf": "datasets",
    "cnnlab.data.sources.shards": "litdata",
}
# A logger's `_target_` → its package (which is also the extra's name).
LOGGERS = {
    "cnnlab.training.loggers.RunMLFlowLogger": "mlflow",
    "cnnlab.training.loggers.RunWandbLogger": "wandb",
}


def logger_line(name: str, package: str) -> str:
    return (f"logger.{name} needs the {package} package, which is not installed: "
            f"pip install 'cnnlab[{package}]' (or pip install {package})")  # fmt: skip


def installed(package: str) -> bool:
    """Found on the path, without importing it (a hidden package, `sys.modules[p] = None`,
    counts as missing)."""
    return find_spec(package) is not None


def need(package: str, *submodules: str) -> ModuleType:
    """`import package` (and its `submodules`), or a UserError with the line that installs it."""
    try:
        for name in submodules:
            importlib.import_module(f"{package}.{name}")
        return importlib.import_module(package)
    except ImportError:
        raise UserError(INSTALL[package]) from None


def check(cfg: DictConfig) -> None:
    """A package the config's model, data or loggers need that is not installed: its install
    line now (the config check runs this before torch loads)."""
    for key in ("model.net._target_", "data.source._target_"):
        package = TARGETS.get(OmegaConf.select(cfg, key, default=None))
        if package and not installed(package):
            raise UserError(INSTALL[package])
    for name, node in (OmegaConf.select(cfg, "logger", default=None) or {}).items():
        package = LOGGERS.get(node.get("_target_")) if isinstance(node, DictConfig) else None
        if package and not installed(package):
            raise UserError(logger_line(name, package))

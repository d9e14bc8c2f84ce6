"""What a config read back from a file may build: only the `_target_`s cnnlab's own configs name
(its registry: every `_target_` in `conf/`), and a user project's when its folder is given on the
command line (`--config-dir DIR`) or to `cnnlab.load(..., config_dir=DIR)`.

A checkpoint or a run folder is data someone may have edited: a `_target_` is an import and a
call, so `{"_target_": "os.system", "command": "…"}` in a stored config would run a command. The
stored config is checked here, whole, before anything in it is imported or built.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cnnlab.core.errors import UserError

_PACKAGE = Path(__file__).resolve().parents[1]


def config_dir() -> Path:
    """cnnlab's own configs: a wheel ships the top-level `conf/` as `cnnlab/conf/`; a source
    checkout (editable install) reads the repository's `conf/`."""
    shipped = _PACKAGE / "conf"
    return shipped if shipped.is_dir() else _PACKAGE.parents[1] / "conf"


# A project's config folder given from Python (`cnnlab.train(..., config_dir=DIR)`): what
# `--config-dir DIR` is on a command line, for the run in progress.
_from_python: list[str] = []


@contextlib.contextmanager
def project_configs(folder: str | Path | None):
    """While the block runs, `folder` is the project's config folder (None: none added)."""
    _from_python.append(str(folder) if folder is not None else "")
    try:
        yield
    finally:
        _from_python.pop()


def user_config_dir() -> str | None:
    """The project's config folder of the command (or API call) in progress, if any."""
    if _from_python:
        return _from_python[-1] or None
    return config_dir_argument(sys.argv[1:])


def config_dir_argument(argv: list[str]) -> str | None:
    """The folder of `--config-dir DIR` (or `-cd DIR`, `--config-dir=DIR`) in a command line."""
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config-dir="):
            return arg.split("=", 1)[1]
    return None


def named_in(tree: Any) -> set[str]:
    """Every literal `_target_` in a config tree (plain containers)."""
    if isinstance(tree, dict):
        found = {str(tree["_target_"])} if isinstance(tree.get("_target_"), str) else set()
        return found.union(*(named_in(v) for v in tree.values()))
    if isinstance(tree, list):
        return set().union(*(named_in(v) for v in tree))
    return set()


def named_in_overrides(overrides: Iterable[str]) -> set[str]:
    """The `_target_`s Hydra overrides set (`+callbacks.x._target_=mypkg.X`): a command line's."""
    return {
        value
        for key, _, value in (o.lstrip("+~").partition("=") for o in overrides)
        if key.endswith("_target_") and value
    }


@functools.cache
def registered(folder: str) -> frozenset[str]:
    """Every literal `_target_` in the YAML files under `folder`."""
    found: set[str] = set()
    for path in sorted(Path(folder).rglob("*.yaml")):
        try:
            found |= named_in(yaml.safe_load(path.read_text()))
        except (OSError, yaml.YAMLError):
            continue  # a file Hydra itself would refuse names nothing to trust
    return frozenset(found)


def allowed(config_dirs: Iterable[str | Path] = ()) -> frozenset[str]:
    """cnnlab's targets, those of `config_dirs` and of the running command's `--config-dir`."""
    folders = [config_dir(), *config_dirs]
    named = user_config_dir()
    if named:
        folders.append(named)
    return frozenset().union(*(registered(str(Path(f).resolve())) for f in folders))


def _nodes(tree: Any, where: str):
    """(dotted key, node) for every mapping in `tree` that has a `_target_`."""
    if isinstance(tree, dict):
        if "_target_" in tree:
            yield where, tree
        for key, value in tree.items():
            yield from _nodes(value, f"{where}.{key}" if where else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _nodes(value, f"{where}[{i}]")


def checked(
    stored: dict[str, Any], source: str | Path, config_dirs=(), also: Iterable[str] = ()
) -> dict[str, Any]:
    """The stored config with its interpolations resolved (an `${oc.create:…}` could otherwise
    bring a node in after the check) and every `_target_` checked against `allowed()` and `also`
    (a resumed run's own command line: what the user names now is theirs); anything else is one
    UserError line naming the file, the key and the target. Nothing is imported."""
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(stored), resolve=True)
    except (OmegaConfBaseException, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{source} holds a config that does not resolve ({first})") from None
    trusted = allowed(config_dirs) | set(also)
    for where, node in _nodes(resolved, ""):
        target = node["_target_"]
        if not isinstance(target, str) or target not in trusted:
            raise UserError(
                f"{source} is unsafe: {where + '.' if where else ''}_target_={target!r} is not one "
                f"of cnnlab's builders "
                f"(nor of a --config-dir given on the command line); refused, nothing was run"
            )
    return resolved

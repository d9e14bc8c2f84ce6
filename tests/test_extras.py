"""The optional packages (core/extras.py): each missing one is said in its install line by the
config check, before torch loads (the documented rows run that in a fresh process), and the
same line by the feature's import where the package is found but cannot be loaded."""

from __future__ import annotations

import re
import sys

import pytest
import tomllib

from cnnlab.cli.schema import validate
from cnnlab.core import extras
from cnnlab.core.errors import UserError
from tests.conftest import REPO

CASES = [
    (("model=timm",), "timm", extras.INSTALL["timm"]),
    (("data=hf", "data.source.name=beans"), "datasets", extras.INSTALL["datasets"]),
    (("data=shards", "data.source.root=/nowhere"), "litdata", extras.INSTALL["litdata"]),
    (("logger=many",), "mlflow", extras.logger_line("mlflow", "mlflow")),
    (("logger=wandb",), "wandb", extras.logger_line("wandb", "wandb")),
]


@pytest.mark.parametrize(("overrides", "package", "line"), CASES, ids=[c[1] for c in CASES])
def test_a_missing_package_is_its_install_line_from_the_config_check(
    overrides, package, line, compose, monkeypatch
):
    cfg = compose(*overrides)
    validate(cfg)  # installed here: nothing to say
    monkeypatch.setitem(sys.modules, package, None)  # as on a machine without it
    with pytest.raises(UserError) as err:
        validate(cfg)
    assert str(err.value) == line


@pytest.mark.parametrize("package", sorted(extras.INSTALL))
def test_an_import_that_fails_says_the_same_line(package, monkeypatch):
    extras.need(package)
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(UserError) as err:
        extras.need(package)
    assert str(err.value) == extras.INSTALL[package]


def test_each_package_is_in_the_extra_its_line_names_and_each_target_is_a_configs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]  # extra → its requirements
    lines = {**extras.INSTALL, **{p: extras.logger_line(p, p) for p in extras.LOGGERS.values()}}
    for package, line in lines.items():
        (extra,) = re.findall(r"cnnlab\[(\w+)\]", line)
        assert [r for r in optional[extra] if re.match(rf"{package}\b", r)], (package, extra)
    yaml = "".join(p.read_text() for p in (REPO / "conf").rglob("*.yaml"))
    for target in [*extras.TARGETS, *extras.LOGGERS]:
        assert f"_target_: {target}\n" in yaml, target

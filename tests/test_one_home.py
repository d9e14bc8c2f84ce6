"""One home per fact: a default is written in `conf/` and nowhere else disagrees with it, every
key the config check knows exists in some config, and every enumeration lives in
`cnnlab.core.choices`."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from cnnlab.cli import schema
from tests.conftest import CONFIG_DIR

CONF = Path(CONFIG_DIR)
SRC = Path(schema.__file__).parents[1]


def _files(root: Path = CONF) -> list[Path]:
    return sorted(root.rglob("*.yaml"))


def _prefix(path: Path, root: Path) -> str:
    """Where a group file's keys land in the composed config (its folder, or the top level)."""
    if "@package _global_" in path.read_text().split("\n", 1)[0]:
        return ""
    parts = path.relative_to(root).parts[:-1]
    return ".".join(parts) + "." if parts else ""


def _keys(node, prefix: str):
    """Every dotted key below `node`."""
    if isinstance(node, DictConfig):
        for key in node.keys():
            child = node._get_node(key)
            yield prefix + str(key)
            if isinstance(child, DictConfig):
                yield from _keys(child, f"{prefix}{key}.")


def _targets(node, where: str):
    """(where, node) for every node with a `_target_` below `node`."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield where, node
        for key in node.keys():
            yield from _targets(node._get_node(key), f"{where}.{key}")
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node):
            yield from _targets(child, f"{where}[{i}]")


def _callable(target: str):
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _plain(value):
    return list(value) if isinstance(value, tuple | ListConfig) else value


def _own_parameters(target: str) -> dict[str, inspect.Parameter]:
    """The parameters cnnlab's own code declares (not those a subclass inherits from Lightning)."""
    obj = _callable(target)
    init = obj.__init__ if inspect.isclass(obj) else obj
    return dict(inspect.signature(init).parameters) if init.__module__.startswith("cnnlab") else {}


def default_mismatches(files: list[Path]) -> list[str]:
    """Two homes for one fact that disagree. For a key that every group file instantiating a
    cnnlab class or function gives, the class's own default must be absent (VGG's depth, a
    dataset's batch size: a config always supplies it) or equal to that one value. A key some
    files leave out takes the class default there: that default is a value in use, its home.
    Experiments and debug files (package _global_) override on purpose and are not homes."""
    nodes: dict[str, list[str]] = {}
    given: dict[tuple[str, str], list[tuple[str, object]]] = {}
    for path in files:
        if _prefix(path, path.parents[1]) == "" and path.parent.name != "conf":
            continue
        for where, node in _targets(OmegaConf.load(path), path.name):
            target = node._get_node("_target_")._value()
            if not isinstance(target, str) or not target.startswith("cnnlab."):
                continue
            nodes.setdefault(target, []).append(where)
            plain = OmegaConf.to_container(node, resolve=False)
            for key, value in plain.items():
                if key != "_target_" and not OmegaConf.is_interpolation(node, key):
                    given.setdefault((target, str(key)), []).append((f"{where}.{key}", value))
    found = []
    for (target, key), values in sorted(given.items()):
        param = _own_parameters(target).get(key)
        if param is None or param.default is inspect.Parameter.empty:
            continue
        if len(values) < len(nodes[target]):
            continue  # some files rely on the default
        for where, value in values:
            if _plain(value) != _plain(param.default):
                found.append(f"{where}: {value!r} in the YAML, {param.default!r} in {target}")
    return found


def test_every_class_default_equals_the_value_its_config_gives():
    assert default_mismatches(_files()) == []


def test_a_class_default_that_disagrees_with_its_yaml_is_found(tmp_path):
    wrong = tmp_path / "ema.yaml"
    wrong.write_text("ema:\n  _target_: cnnlab.callbacks.ema.EMA\n  decay: 0.5\n")
    assert default_mismatches([wrong]) == [
        "ema.yaml.ema.decay: 0.5 in the YAML, 0.99 in cnnlab.callbacks.ema.EMA"
    ]


def _config_keys() -> set[str]:
    keys: set[str] = set()
    for path in _files():
        keys |= set(_keys(OmegaConf.load(path), _prefix(path, CONF)))
    return keys


def test_every_key_the_config_check_knows_exists_in_some_config():
    keys = _config_keys()
    missing = [k for k in schema.RULES if k not in keys]
    missing += [k for rules in schema.NETWORK_RULES.values() for k in rules if k not in keys]
    missing += [f"{task}: {key}" for task, rules in schema.COMMAND_RULES.items()
                for key in rules if key not in OmegaConf.load(CONF / f"{task}.yaml")]  # fmt: skip
    assert missing == []


def test_a_rule_for_a_key_no_config_has_is_found(monkeypatch):
    monkeypatch.setitem(schema.RULES, "trainer.max_epoch", schema.RULES["trainer.max_epochs"])
    assert "trainer.max_epoch" not in _config_keys()


def _string_tuples(path: Path) -> list[tuple[str, int]]:
    """Module-level NAME = ("a", "b", ...) assignments of two or more words: enumerations."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Tuple)
        ):
            words = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
            if len(words) >= 2 and all(isinstance(w, str) and w.isidentifier() for w in words):
                found.append((node.targets[0].id, node.lineno))
    return found


# Module-level word tuples outside `core/choices.py` that are not choices a user makes.
NOT_CHOICES = {
    "analysis/receptive.py:SIDE_PATHS": "module names of residual shortcuts",
    "callbacks/hparams.py:INTERNAL": "Hydra's own keys",
    "callbacks/hparams.py:GROUPS": "config groups shown in the HPARAMS tab",
    "cli/ddp_sweep.py:LAUNCHER_VARS": "environment variables",
    "cli/resolvers.py:LOWER_IS_BETTER": "metric name parts",
    "cli/run_guard.py:RANK_VARS": "environment variables",
    "core/metric_names.py:EVAL_METRICS": "metric names cnnlab logs (their own home)",
    "core/metric_names.py:TRAIN_METRICS": "metric names cnnlab logs (their own home)",
    "data/hf.py:PATHS_OR_BYTES": "Hugging Face image column fields",
    "data/photo_corpus.py:PHOTOS": "scikit-learn's photo names",
    "features/store.py:INDEX_COLUMNS": "the columns of a features index file",
    "data/photo_corpus.py:THIRDS": "crop positions",
    "lecture/claims.py:ORDER": "the lecture's claims, in the lecture's order (their home)",
    "lecture/run.py:PRETRAINED": "claim names",
    "models/anatomy.py:TOKEN_NORMS": "module names in timm and torchvision ViTs",
    "training/build.py:DECIDED_KEYS": "config keys the preprocessing decides",
    "training/cached_probe.py:SPLITS": "the splits a run has",
    "training/feature_fit.py:FITTED": "the choices.CLASSIFIERS fitted without epochs",
    "training/precision.py:BF16_FLAGS": "CPU flags",
    "training/step_hooks.py:PER_BATCH": "Lightning hook names",
}


def test_the_choices_a_user_makes_are_written_in_one_module():
    """A value the config check (or a command's --flag) accepts from a list is that list in
    `core/choices.py`: a new word tuple elsewhere is either moved there or named here, with why
    it is not a choice."""
    found = {f"{p.relative_to(SRC)}:{name}" for p in sorted(SRC.rglob("*.py"))
             if p.name != "choices.py" for name, _ in _string_tuples(p)}  # fmt: skip
    assert found == set(NOT_CHOICES)


def test_each_registry_names_exactly_its_choices():
    """Implementations keyed by name answer exactly the names the config check accepts."""
    from cnnlab.analysis import cam
    from cnnlab.core import choices
    from cnnlab.models import lenet

    assert tuple(cam.METHODS) == choices.CAM_METHODS
    assert tuple(lenet.ACTIVATIONS) == choices.LENET_ACTIVATIONS
    assert tuple(lenet.POOLS) == choices.LENET_POOLS


def test_each_export_format_is_one_module_named_as_its_choice():
    from cnnlab.core import choices
    from cnnlab.inference import exporters

    folder = Path(exporters.__file__).parent
    assert {p.stem for p in folder.glob("*.py")} - {"__init__"} == set(choices.EXPORT_FORMATS)
    for name in choices.EXPORT_FORMATS:
        exporter = exporters.get(name)
        assert exporter.name == name and exporter.suffix.startswith(".")
    assert len({exporters.get(n).suffix for n in choices.EXPORT_FORMATS}) == len(
        choices.EXPORT_FORMATS)  # fmt: skip

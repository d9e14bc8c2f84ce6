"""Every option of every config group composes, resolves, and passes the typed schema."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from cnnlab import build
from cnnlab.errors import UserError
from cnnlab.schema import validate
from tests.conftest import GROUPS, options

CASES = [(g, o) for g in GROUPS for o in options(g)]
# Options that need a value only the user can give (a folder of their own images).
NEEDS_USER_VALUE = {("data", "image_folder"): ["data.source.root=/x", "data.num_classes=3"]}


def test_every_group_has_options():
    assert {
        "data",
        "model",
        "optimizer",
        "scheduler",
        "trainer",
        "callbacks",
        "logger",
        "paths",
        "debug",
        "augment",
    } <= set(GROUPS)
    assert {"sgd", "adam", "adamw", "rmsprop"} <= set(options("optimizer"))
    assert {"none", "cosine", "step", "onecycle", "plateau"} <= set(options("scheduler"))
    assert {"default", "cpu", "gpu", "ddp", "ddp_cpu", "mps"} <= set(options("trainer"))
    assert {"tensorboard", "csv", "none"} <= set(options("logger"))


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_option_composes_and_resolves(compose, group, option):
    extra = NEEDS_USER_VALUE.get((group, option), [])
    cfg = compose(f"{group}={option}", *extra)
    validate(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert resolved["data"]["num_classes"] == resolved["model"]["net"]["num_classes"]


@pytest.mark.parametrize("option", options("data"))
def test_every_data_option_builds_its_datamodule(compose, option):
    cfg = compose(f"data={option}", *NEEDS_USER_VALUE.get(("data", option), []))
    dm = build.datamodule(cfg.data)
    assert dm.num_classes == cfg.data.num_classes and callable(dm.source)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs"),
        ("optimizer.lr=fast", "optimizer.lr"),
        ("data.batch_size=big", "data.batch_size"),
        ("seed=x", "seed"),
    ],
)
def test_wrong_type_names_the_key(compose, override, key):
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        validate(compose(override))


def test_shapes_flow_from_data_to_model(compose):
    cfg = compose("data=cifar10", "model=convnet")
    assert cfg.model.net.in_channels == 3 and cfg.model.net.image_size == 32

"""Every option of every config group composes, resolves, and passes the typed schema."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from cnnlab.cli.schema import validate
from cnnlab.core.errors import UserError
from cnnlab.training import build
from tests.conftest import GROUPS, REPO, options

CASES = [(g, o) for g in GROUPS for o in options(g)]
# Options that need a value only the user can give (a folder of their own images).
NEEDS_USER_VALUE = {
    ("data", "image_folder"): ["data.source.root=/x", "data.num_classes=3"],
    ("data", "hf"): ["data.source.name=/x", "data.num_classes=3"],
    ("data", "shards"): ["data.source.root=/x", "data.num_classes=3"],
}


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
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
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
    assert cfg.model.net.in_channels == 3 and cfg.model.net.num_classes == 10
    prep = build.preprocessing(cfg)  # the input size is decided once, then handed to the net
    assert prep.input_size == 32 and build.network(cfg.model, prep).features[0].in_channels == 3


@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5, 8, 100])
def test_onecycle_survives_tiny_runs(total_steps):
    from cnnlab.training.schedulers import onecycle

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = onecycle(optimizer, total_steps=total_steps, max_epochs=1)["scheduler"]
    for _ in range(total_steps):  # 4 steps at pct_start 0.25 divided by zero before
        optimizer.step()
        sched.step()
    assert 0 < optimizer.param_groups[0]["lr"] <= 0.1


def test_bf16_on_a_cpu_without_bf16_warns(compose, caplog, tmp_path, monkeypatch):
    from cnnlab.training import precision

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse avx2 fma\n")  # this machine's kind: AVX2, no bf16
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    cfg = compose("data=fake", "trainer=cpu", "trainer.precision=bf16-mixed")
    with caplog.at_level("WARNING"):
        build.trainer(cfg, callbacks=[], loggers=[])
    assert "trainer.precision=bf16-mixed on a CPU without native bfloat16" in caplog.text
    cpuinfo.write_text("flags\t\t: avx2 avx512_bf16 amx_bf16\n")
    caplog.clear()
    build.trainer(cfg, callbacks=[], loggers=[])
    assert "without native bfloat16" not in caplog.text


def test_a_machines_own_settings_file_applies_when_present_and_is_optional(tmp_path):
    """conf/local/default.yaml (git-ignored): this machine's settings, applied last."""
    import shutil

    from hydra import compose, initialize_config_dir

    from tests.conftest import CONFIG_DIR

    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    with initialize_config_dir(version_base="1.3", config_dir=str(conf)):
        assert compose("train").data.num_workers == 0  # no file: nothing changes
    (conf / "local").mkdir()
    (conf / "local" / "default.yaml").write_text(
        "# @package _global_\ndata:\n  num_workers: 3\ntrainer:\n  devices: 1\n"
    )
    with initialize_config_dir(version_base="1.3", config_dir=str(conf)):
        cfg = compose("train", overrides=["model=mlp"])
    assert (cfg.data.num_workers, cfg.trainer.devices, cfg.model.net._target_) == (
        3, 1, "cnnlab.models.mlp.MLP")  # fmt: skip
    assert "conf/local/" in (REPO / ".gitignore").read_text()

"""Transfer learning: pretrained weights offline, freeze strategies, optimizer groups."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

from cnnlab.commands.train import train
from cnnlab.core.errors import UserError
from cnnlab.core.preprocessing import decide
from cnnlab.training import build

TINY = [  # 64 fake images in 4 steps; no sanity-check pass, no layer table
    "data=fake",
    "data.image_size=32",
    "data.source.num_samples=64",
    "data.batch_size=16",
    "trainer.num_sanity_val_steps=0",
    "callbacks.arithmetic=null",
]


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: torch.nn.Module, prefix: str = "") -> set[str]:
    return {
        k
        for k, v in module.state_dict().items()
        if k.startswith(prefix) and v.dtype.is_floating_point and not torch.equal(before[k], v)
    }


@pytest.mark.slow
def test_linear_probe_changes_only_the_head(quick, monkeypatch):
    before, net, _ = _run_with_fixed_net(
        quick, monkeypatch, "model=resnet_cifar", "freeze=linear_probe"
    )
    changed = _changed(before, net)
    assert changed and all(k.startswith("classifier.1.") for k in changed), sorted(changed)[:5]
    bn = [k for k in before if "running_mean" in k or "running_var" in k]
    assert bn and all(torch.equal(before[k], net.state_dict()[k]) for k in bn)


@pytest.mark.slow
def test_partial_freeze_trains_exactly_the_later_stages(quick, monkeypatch):
    before, net, _ = _run_with_fixed_net(
        quick, monkeypatch, "model=resnet18", "freeze=partial", "freeze.strategy.until=layer3"
    )
    changed = _changed(before, net)
    stages = {k.split(".")[0] for k in changed}
    assert stages == {"layer4", "fc"}, stages
    for stage in ("conv1", "bn1", "layer1", "layer2", "layer3"):
        assert not _changed(before, net, stage)


def test_partial_freeze_names_valid_stages(quick, monkeypatch):
    with pytest.raises(UserError, match="freeze.until='layer9' .* valid: conv1, bn1, relu"):
        _run_with_fixed_net(
            quick, monkeypatch, "model=resnet18", "freeze=partial", "freeze.strategy.until=layer9"
        )


@pytest.mark.slow
def test_gradual_unfreezes_at_epoch_with_its_lr_ratio(quick, monkeypatch, tmp_path):
    import lightning as L

    seen = {}

    class Spy(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            seen[trainer.current_epoch] = _snapshot(pl_module.net)

    monkeypatch.setattr(build, "callbacks", lambda cfg, _orig=build.callbacks: [*_orig(cfg), Spy()])
    before, net, objs = _run_with_fixed_net(
        quick,
        monkeypatch,
        "model=resnet_cifar",
        "freeze=gradual",
        "freeze.strategy.unfreeze_at_epoch=1",
        "freeze.backbone_lr_ratio=0.1",
        "trainer.max_epochs=2",
        "scheduler=none",
        "optimizer.lr=0.01",
        "callbacks.lr_monitor.logging_interval=step",
        "trainer.log_every_n_steps=1",
    )
    after_0 = seen[0]
    assert {
        k
        for k in after_0
        if not torch.equal(before[k], after_0[k]) and before[k].dtype.is_floating_point
    } <= {"classifier.1.weight", "classifier.1.bias"}
    assert any(not torch.equal(after_0[k], seen[1][k]) for k in after_0 if k.startswith("features"))
    optimizer = objs["trainer"].optimizers[0]
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["backbone"] == pytest.approx(0.001) and lrs["head"] == pytest.approx(0.01)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    logged = {t: acc.Scalars(t)[-1].value for t in acc.Tags()["scalars"] if t.startswith("lr-")}
    assert logged["lr-AdamW/backbone"] == pytest.approx(0.001), logged
    assert logged["lr-AdamW/head"] == pytest.approx(0.01), logged


def test_no_weight_decay_on_norms_and_biases(compose):
    from cnnlab.training.param_groups import param_groups

    cfg = compose("model=resnet_cifar", "data=fake")
    net = build.network(cfg.model, build.preprocessing(cfg))
    groups = {
        g["name"]: g for g in param_groups(net, head="classifier.1", lr=0.1, weight_decay=0.05)
    }
    assert groups["backbone"]["weight_decay"] == 0.05 and groups["head"]["weight_decay"] == 0.05
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0
    assert groups["head_no_decay"]["weight_decay"] == 0.0
    no_decay = {id(p) for g in groups.values() if g["weight_decay"] == 0.0 for p in g["params"]}
    for name, p in net.named_parameters():
        # In this network every 1-D parameter is a BatchNorm scale/shift or a bias.
        assert (id(p) in no_decay) == (p.ndim == 1), name


def _decays(cfg) -> dict[str, float]:
    _, _, net = build.data_and_network(cfg)
    model = build.classifier(cfg, net)
    model.trainer = type("T", (), {"estimated_stepping_batches": 10, "max_epochs": 1})()
    optimizer = model.configure_optimizers()["optimizer"]
    return {g["name"]: g["weight_decay"] for g in optimizer.param_groups}


def test_no_decay_groups_reach_the_optimizer(compose):
    assert _decays(compose("model=resnet_cifar", "data=fake", "optimizer=sgd")) == {
        "backbone": 5e-4,
        "backbone_no_decay": 0.0,
        "head": 5e-4,
        "head_no_decay": 0.0,
    }


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "adam", "rmsprop"])
def test_every_optimizer_takes_decay_norm_and_bias_and_is_built_without_it(compose, optimizer):
    """conf/optimizer/_base.yaml gives every optimizer the key; the parameter groups read it and
    the optimizer's constructor never sees it."""
    cfg = compose("model=resnet_cifar", "data=fake", f"optimizer={optimizer}",
                  "optimizer.weight_decay=0.01", "optimizer.decay_norm_and_bias=true")  # fmt: skip
    assert _decays(cfg) == {"backbone": 0.01, "head": 0.01}  # no group without decay


def test_a_key_that_moved_names_its_new_place(command):
    for old, new in (("decay_norm_and_bias=true", "optimizer.decay_norm_and_bias"),
                     ("nonfinite.policy=skip", "callbacks.nonfinite.policy")):  # fmt: skip
        proc = command("train", old)
        key = old.split("=")[0]
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1] == (
            f"error: {key} moved to {new}; set that instead"
        )


def _run_with_fixed_net(quick, monkeypatch, *overrides):
    """train() with the network snapshot taken before fitting."""
    holder = {}
    real_network = build.network

    def spy(model_cfg, prep):
        net = real_network(model_cfg, prep)
        holder["before"] = _snapshot(net)
        return net

    monkeypatch.setattr(build, "network", spy)
    cfg = quick(*TINY, *overrides)
    _, objs = train(cfg)
    return holder["before"], objs["model"].net, objs


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def test_torchvision_weights_load_offline_from_the_cache(compose, torch_home):
    torch.manual_seed(123)
    reference = resnet18(num_classes=1000).state_dict()  # stands in for the ImageNet weights
    name = Path(ResNet18_Weights.DEFAULT.url).name
    assert name == "resnet18-f37072fd.pth"
    torch.save(reference, torch_home / "hub" / "checkpoints" / name)
    cfg = compose("model=resnet18", "model.weights=DEFAULT", "data=fake", "data.image_size=32")
    net = build.network(cfg.model, build.preprocessing(cfg))
    state = net.state_dict()
    for key, value in reference.items():
        if key.startswith("fc."):
            continue
        assert torch.equal(state[key], value), key
    assert net.fc.out_features == 10  # the head is new


def test_pretrained_weights_bring_their_preprocessing(compose, torch_home):
    torch.save(
        resnet18().state_dict(), torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    )
    cfg = compose("model=resnet18", "model.weights=DEFAULT", "data=fake", "data.image_size=32")
    prep, dm, net = build.data_and_network(cfg)  # one decision, handed to data and network
    assert prep.mean == pytest.approx((0.485, 0.456, 0.406))
    assert dm.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert dm.input_size == prep.input_size == 224  # ResNet18_Weights.DEFAULT crop_size
    assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 10)
    small = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)  # the data's size, resized on the device
    assert prep.interpolation == "bilinear" and prep(small).shape == (2, 3, 224, 224)
    # A size asked for is the size used (data.input_size: "set it to train at another resolution")
    asked = compose("model=resnet18", "model.weights=DEFAULT", "data=fake", "data.input_size=64")
    assert decide(asked.data, asked.model).input_size == 64


def test_weights_file_with_another_head_loads_the_backbone(compose, tmp_path):
    cfg = compose("model=convnet", "data=fake", "data.num_classes=5")
    source = build.network(cfg.model, build.preprocessing(cfg))
    path = tmp_path / "five.pt"
    torch.save({f"net.{k}": v for k, v in source.state_dict().items()}, path)  # Lightning-style
    target_cfg = compose("model=convnet", "data=fake", f"model.weights={path}")
    net = build.network(target_cfg.model, build.preprocessing(target_cfg))
    assert torch.equal(net.features[0].weight, source.features[0].weight)
    assert net.classifier[4].out_features == 10


def test_weights_file_of_another_architecture_is_refused_in_one_line(compose, tmp_path):
    cfg = compose("model=mlp", "data=fake")
    path = tmp_path / "mlp.pt"
    torch.save(build.network(cfg.model, build.preprocessing(cfg)).state_dict(), path)
    target = compose("model=convnet", "data=fake", f"model.weights={path}")
    with pytest.raises(UserError, match=r"does not fit this network beyond its head: .*missing"):
        build.network(target.model, build.preprocessing(target))


def test_weights_that_cannot_be_downloaded_say_where_to_put_the_file(
    command, tmp_path, monkeypatch
):
    import urllib.error

    import torchvision.models._api as api

    def offline(url, *args, **kwargs):  # no network in tests: the download fails as offline
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    proc = command(
        "train",
        "debug=test",
        "data=fake",
        "model=resnet18",
        "model.weights=DEFAULT",
        env={"TORCH_HOME": str(tmp_path / "empty_torch_home")},
    )
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    where = f"{tmp_path}/empty_torch_home/hub/checkpoints/resnet18-f37072fd.pth"
    assert "put the file at $TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth" in errors[0]
    assert f"(here: {where};" in errors[0] and "model.weights=<a local file>" in errors[0]


def test_a_bicubic_resize_stays_in_the_unit_range():
    """Bicubic overshoots at sharp edges; a uint8 resize (PIL, torchvision) clamps, and Grad-CAM's
    overlay refuses pixels outside [0, 1] (seen with timm weights, whose resize is bicubic)."""
    from cnnlab.core.preprocessing import Preprocessing

    edges = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    edges[..., ::2, :] = 255  # stripes: the worst case for overshoot
    unit = Preprocessing((0.5,), (0.5,), 42, "bicubic").to_unit(edges)
    assert unit.min() >= 0 and unit.max() <= 1
    assert unit.max() == 1 and unit.min() == 0  # clamped, not rescaled

"""Every model config, at MNIST, CIFAR and photo shapes: one training step, and every trainable
parameter receives a gradient. Parametrized over conf/model/, so a new config is tested as is.
Photos run at 64×64 (each model still sees at least its minimum input, 224 for ViT): at 224 the
big networks cost 3-7 s a step here, and 224-px arithmetic is tested in test_arithmetic.py."""

from __future__ import annotations

import pytest
import torch

from cnnlab.models.anatomy import find_cam_layer, find_head
from cnnlab.training import build
from tests.conftest import model_options

SHAPES = {"mnist": (1, 28), "cifar": (3, 32), "photo": (3, 64)}
MODELS = model_options()


def _build(compose, model: str, channels: int, size: int):
    cfg = compose(
        f"model={model}",
        "data=fake",
        f"data.in_channels={channels}",
        f"data.image_size={size}",
        "data.num_classes=7",
    )
    _, dm, net = build.data_and_network(cfg)
    return cfg, dm, net


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("model", MODELS)
def test_one_training_step_reaches_every_parameter(compose, model, shape):
    channels, size = SHAPES[shape]
    cfg, dm, net = _build(compose, model, channels, size)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (2, channels, size, size), dtype=torch.uint8)
    x = dm.preprocess(images)
    assert x.shape[-1] == max(size, cfg.model.min_input_size)
    net.train()
    logits = net(x)
    assert logits.shape == (2, 7)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 6])).backward()
    missing = [
        n
        for n, p in net.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    assert not missing, missing[:5]


@pytest.mark.parametrize("model", MODELS)
def test_head_and_cam_layer_are_real_submodules(compose, model):
    cfg, dm, net = _build(compose, model, 3, 32)
    head = find_head(net)[0] if cfg.model.head == "auto" else cfg.model.head
    assert isinstance(net.get_submodule(head), torch.nn.Linear)
    assert net.get_submodule(head).out_features == 7
    if cfg.model.cam_layer in (None, "auto"):
        return
    layer = net.get_submodule(cfg.model.cam_layer)
    outputs = []
    handle = layer.register_forward_hook(lambda m, i, o: outputs.append(o))
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, dm.input_size, dm.input_size))
    handle.remove()
    out = outputs[-1]
    # ViT's CAM layer outputs tokens (N, 1 + patches, D); every other model a feature map.
    assert out.ndim == 4 or (out.ndim == 3 and model.startswith("vit")), out.shape


def test_auto_cam_layer_skips_global_pooling(compose):
    _, _, net = _build(compose, "vgg16_tv", 3, 64)  # features end at 2×2, then a 7×7 global pool
    assert find_cam_layer(net, torch.zeros(1, 3, 64, 64)) == "features"


def test_model_below_its_minimum_size_is_refused(compose):
    from cnnlab.core.errors import UserError

    cfg = compose("model=alexnet", "data=fake", "data.input_size=32")
    with pytest.raises(UserError, match="at least 67×67"):
        build.network(cfg.model, build.preprocessing(cfg))

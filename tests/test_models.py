"""The lecture's MLP and ConvNet: shapes and parameter counts from the lecture."""

from __future__ import annotations

import torch

from cnnlab.training import build


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_mlp_on_mnist_has_the_lecture_parameter_count(compose):
    _, _, net = build.data_and_network(compose("model=mlp"))
    assert n_params(net) == 784 * 256 + 256 + 256 * 10 + 10 == 203_530


def test_convnet_is_the_lecture_convnet(compose):
    _, _, net = build.data_and_network(compose("model=convnet"))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (5, 5)),
        (32, 64, (3, 3)),
    ]
    assert net.classifier[1].in_features == 64 * 7 * 7
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_convnet_adapts_to_cifar_shapes(compose):
    _, _, net = build.data_and_network(compose("model=convnet", "data=cifar10"))
    assert net.classifier[1].in_features == 64 * 8 * 8
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_head_and_cam_layer_names_exist(compose):
    for model in ("mlp", "convnet", "convnet_bn"):
        _, _, net = build.data_and_network(full := compose(f"model={model}"))
        cfg = full.model
        assert isinstance(net.get_submodule(cfg.head), torch.nn.Linear)
        if cfg.cam_layer:
            assert isinstance(net.get_submodule(cfg.cam_layer), torch.nn.ReLU)

"""Receptive fields and jumps (cnnlab.analysis.receptive) against the ones measured by
back-propagating from one output unit: the input pixels whose gradient is not zero."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnlab.analysis.inside import stages
from cnnlab.analysis.receptive import Field, fields
from cnnlab.models.convnet import ConvNet


def _measurable(net: nn.Module) -> nn.Module:
    """Every path carries gradient: positive weights, BatchNorm as identity, and average pools
    in place of max pools (same window; a max pool passes gradient to one input only)."""
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.MaxPool2d):
            pool = nn.AvgPool2d(module.kernel_size, module.stride, module.padding)
            parent = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
            setattr(parent, name.rsplit(".", 1)[-1], pool)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
    return net.eval()


def _measured(net: nn.Module, names: list[str], size: int, channels: int = 3) -> dict[str, Field]:
    outputs: dict[str, torch.Tensor] = {}
    for name in names:
        net.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: outputs.__setitem__(name, out)
        )
    x = torch.ones(1, channels, size, size, requires_grad=True)
    net(x)
    found = {}
    for name in names:
        out = outputs[name]
        h, w = out.shape[-2] // 2, out.shape[-1] // 2
        spans = []
        for col in (w, w + 1):  # two neighbouring units: their distance is the jump
            (grad,) = torch.autograd.grad(out[0, :, h, col].sum(), x, retain_graph=True)
            cols = grad[0].abs().sum((0, 1)).nonzero().flatten()
            spans.append((int(cols.min()), int(cols.max())))
        (lo, hi), (lo2, _) = spans
        found[name] = Field(hi - lo + 1, lo2 - lo, (lo + hi) / 2 - w * (lo2 - lo))
    return found


# name: (network, input channels, input side: larger than the deepest field, so no field is
# clipped by the border)
NETWORKS = {
    "convnet": (lambda: ConvNet(num_classes=10, in_channels=1, image_size=64), 1, 64),
    "alexnet": (lambda: torchvision.models.alexnet(), 3, 320),
    "vgg16": (lambda: torchvision.models.vgg16(), 3, 320),
    "resnet18": (lambda: torchvision.models.resnet18(), 3, 480),
    "resnet50": (lambda: torchvision.models.resnet50(), 3, 480),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_every_stage_field_is_the_one_back_propagation_measures(name):
    build, channels, big = NETWORKS[name]
    net, shape = _measurable(build()), (channels, big, big)
    computed = fields(net, shape)
    assert computed
    # Every layer of the small stacks; the end of every stage (the last layer at each
    # resolution, as the playground shows them) of VGG-16 and the ResNets.
    names = list(computed) if name in ("convnet", "alexnet") else list(stages(net, shape))
    measured = _measured(net, names, big, channels)
    wrong = {n: (computed[n], measured[n]) for n in names if computed[n] != measured[n]}
    assert not wrong


def test_a_network_that_branches_has_no_chain_and_cnnlabs_shortcuts_are_side_paths():
    from cnnlab.analysis.arithmetic import on_meta
    from cnnlab.models.resnet_cifar import ResNetCifar

    assert fields(on_meta(torchvision.models.densenet121), (3, 224, 224)) is None
    assert fields(on_meta(lambda: torchvision.models.inception_v3(init_weights=False)),
                  (3, 299, 299)) is None  # fmt: skip
    net = ResNetCifar(depth=8, num_classes=10, in_channels=1, image_size=28)  # 3 stages of 1 block
    chain = fields(net, (1, 28, 28))
    assert chain and not [n for n in chain if "shortcut" in n]
    assert chain[list(chain)[-1]] == Field(
        size=25, jump=4, centre=0.0
    )  # 1 + 2·(1 + 1 + 1) + 2·(1 + 2) + 2·(2 + 4)

"""What a trained network computes inside (the playground's last tab, the diagnostics
callback): its first convolution's filters, an image's feature maps at each stage with the most
active channels first, and the test images that excite one channel most, cropped to that
channel's receptive field ("early layers detect edges and textures, deeper layers respond to
parts and whole objects")."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.analysis.receptive import Field, fields


def first_conv(net: nn.Module) -> nn.Conv2d | None:
    return next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)


def scaled(t: torch.Tensor) -> torch.Tensor:
    """Each map (first dimension) stretched to [0, 1] on its own."""
    flat = t.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    shape = (-1,) + (1,) * (t.dim() - 1)
    return (t - lo.view(shape)) / (hi - lo).clamp_min(1e-12).view(shape)


def filter_grid(net: nn.Module, limit: int = 64) -> torch.Tensor | None:
    """The first convolution's filters (at most `limit`), each scaled to [0, 1], 8 per row:
    (3, H, W). Colour filters show as colour; others show their first input channel."""
    from torchvision.utils import make_grid

    conv = first_conv(net)
    if conv is None:
        return None
    w = conv.weight.detach().cpu()[:limit]
    w = w if w.shape[1] in (1, 3) else w[:, :1]
    return make_grid(scaled(w), nrow=8, padding=1, pad_value=1.0)


def stages(net: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Field]:
    """The last sliding layer at each resolution of the network's chain (a stage ends where the
    next layer downsamples), with its field; {} for a network without a chain."""
    chain = fields(net, input_shape) or {}
    names = list(chain)
    return {n: chain[n] for i, n in enumerate(names)
            if i + 1 == len(names) or chain[names[i + 1]].jump != chain[n].jump}  # fmt: skip


def outputs(net: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """The named layers' outputs for the batch `x` (eval mode, no gradients)."""
    got: dict[str, torch.Tensor] = {}
    hooks = [net.get_submodule(n).register_forward_hook(
        lambda _m, _i, out, n=n: got.__setitem__(n, out.detach())) for n in names]  # fmt: skip
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(x)
    finally:
        net.train(was_training)
        for h in hooks:
            h.remove()
    return got


@dataclass(frozen=True)
class Maps:
    layer: str
    channels: list[int]  # the most active first (mean response over the map)
    maps: torch.Tensor  # (len(channels), h, w)


def stage_maps(net: nn.Module, x: torch.Tensor, per_stage: int = 8) -> list[Maps]:
    """One image's (x: (1, C, H, W)) feature maps at every stage, most active channels first."""
    picked = stages(net, tuple(x.shape[1:]))
    out = []
    for layer, maps in outputs(net, x, list(picked)).items():
        order = maps[0].mean((1, 2)).argsort(descending=True)[:per_stage].tolist()
        out.append(Maps(layer, order, maps[0, order]))
    return out


def top_crops(net: nn.Module, layer: str, channel: int, x: torch.Tensor, pictures: torch.Tensor,
              field: Field, count: int = 8) -> list[tuple[int, float, torch.Tensor]]:  # fmt: skip
    """The `count` images of the batch `x` whose strongest response of `channel` at `layer` is
    highest: (index, response, the crop of `pictures` (N, C, H, W uint8) that unit sees)."""
    maps = outputs(net, x, [layer])[layer][:, channel]  # (N, h, w)
    best, where = maps.flatten(1).max(1)
    found = []
    for i in best.argsort(descending=True)[:count].tolist():
        row, col = divmod(int(where[i]), maps.shape[-1])
        (top, bottom), (left, right) = field.window(row), field.window(col)
        height, width = pictures.shape[-2:]
        crop = pictures[i, :, max(top, 0) : min(bottom, height - 1) + 1,
                        max(left, 0) : min(right, width - 1) + 1]  # fmt: skip
        found.append((i, float(best[i]), crop))
    return found

"""Find a network's head and Grad-CAM layer when its config does not name them."""

from __future__ import annotations

import torch
from torch import nn

# A global pool's output is a feature map only by shape; CAM wants the maps before it.
POOLS_TO_SKIP = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def find_head(net: nn.Module) -> tuple[str, nn.Linear]:
    """The last nn.Linear in definition order: the classifier of every torchvision model."""
    linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(net).__name__} has no nn.Linear head")
    return linears[-1]


def find_cam_layer(net: nn.Module, example: torch.Tensor) -> str | None:
    """The last module to finish whose output is a feature map (N, C, H, W) with H, W > 1: the
    usual Grad-CAM target (a parent finishes after its children, so `layer4`, not its ReLU)."""
    seen: list[str] = []
    names = {m: n for n, m in net.named_modules() if n}

    def hook(module, _inp, out):
        if isinstance(module, POOLS_TO_SKIP):
            return
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[-1] > 1:
            seen.append(names[module])

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        was_training = net.training
        net.eval()
        with torch.no_grad():
            net(example)
        net.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return seen[-1] if seen else None

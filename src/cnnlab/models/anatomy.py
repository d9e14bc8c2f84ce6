"""Find a network's head and Grad-CAM layer when its config does not name them."""

from __future__ import annotations

import math

import torch
from torch import nn

# A global pool's output is a feature map only by shape; CAM wants the maps before it.
POOLS_TO_SKIP = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def find_head(net: nn.Module) -> tuple[str, nn.Module]:
    """The head a model declares (timm's `pretrained_cfg["classifier"]`, which names two for
    distilled models: `head,head_dist`, comma-joined), else the last nn.Linear in definition
    order: the classifier of every torchvision model."""
    declared = (getattr(net, "pretrained_cfg", None) or {}).get("classifier")
    names = [declared] if isinstance(declared, str) else list(declared or [])
    modules = dict(net.named_modules())
    if names and all(isinstance(modules.get(n), nn.Linear) for n in names):
        return ",".join(names), modules[names[0]]
    linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(net).__name__} has no nn.Linear head")
    return linears[-1]


def in_head(name: str, head: str) -> bool:
    """A parameter's or module's dotted name is (inside) the head; `head` may name several,
    comma-separated (`find_head`)."""
    return any(name == h or name.startswith(h + ".") for h in head.split(","))


# A transformer block's first norm (timm `norm1`, torchvision `ln_1`): its tokens are the
# Grad-CAM target pytorch-grad-cam recommends for ViTs (the last block's, reshaped to a grid).
TOKEN_NORMS = ("norm1", "ln_1")


def patch_grid(tokens: int) -> tuple[int, int]:
    """A ViT's token count P + S² → (P prefix tokens: class, registers; S, the grid's side)."""
    side = math.isqrt(tokens)
    return tokens - side * side, side


def is_token_grid(out: torch.Tensor) -> bool:
    """(N, P + S², D) tokens: a few prefix tokens (class, registers) and an S × S patch grid."""
    if out.ndim != 3 or out.shape[1] < 5:
        return False
    prefix, side = patch_grid(out.shape[1])
    return side > 1 and prefix <= 8


def find_cam_layer(net: nn.Module, example: torch.Tensor) -> str | None:
    """The last module to finish whose output is a feature map (N, C, H, W) with H, W > 1, or a
    transformer block's token grid: the usual Grad-CAM target (a parent finishes after its
    children, so `layer4`, not its ReLU; a ViT's last `blocks.N.norm1`, not its patch embedding)."""
    seen: list[str] = []
    names = {m: n for n, m in net.named_modules() if n}

    def hook(module, _inp, out):
        if isinstance(module, POOLS_TO_SKIP) or not isinstance(out, torch.Tensor):
            return
        if "attn" in names[module].split("."):  # attention's own (N, heads, T, T) tensors
            return
        if out.ndim == 4 and out.shape[-1] > 1:
            seen.append(names[module])
        elif names[module].endswith(TOKEN_NORMS) and is_token_grid(out):
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

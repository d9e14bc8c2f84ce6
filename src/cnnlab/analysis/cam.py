"""Grad-CAM for every network in the zoo, through the `grad-cam` package (pytorch-grad-cam).

No Lightning here. `cam_maps(net, layer, x, classes)` returns one map per image in [0, 1] at the
input's size. It works inside Lightning's no-grad validation and under inference mode: gradients
are switched back on for these fresh input tensors, and the network's train/eval mode (which the
CAM constructor changes) is restored afterwards.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from cnnlab.core.errors import UserError
from cnnlab.models.anatomy import find_cam_layer, patch_grid

METHODS = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "eigencam": EigenCAM,
    "layercam": LayerCAM,
    "scorecam": ScoreCAM,
    "hirescam": HiResCAM,
}


class NoFeatureMaps(UserError):
    """The network has no convolutional feature maps (the MLP): Grad-CAM does not apply."""


def vit_tokens_to_maps(tokens: torch.Tensor) -> torch.Tensor:
    """ViT: (N, P + H·W, D) tokens → (N, D, H, W) maps, dropping the P prefix tokens (the class
    token, and the register tokens some timm ViTs add)."""
    prefix, side = patch_grid(tokens.shape[1])
    patches = tokens[:, prefix:, :]
    return patches.reshape(tokens.shape[0], side, side, tokens.shape[2]).permute(0, 3, 1, 2)


def resolve_layer(net: nn.Module, name: str | None, example: torch.Tensor) -> str:
    if name == "auto":
        name = find_cam_layer(net, example)
    if not name:
        raise NoFeatureMaps(
            f"{type(net).__name__} has no feature maps (model.cam_layer is null): "
            "Grad-CAM needs a convolutional layer"
        )
    net.get_submodule(name)  # fails loudly on a wrong dotted name
    return name


def cam_maps(
    net: nn.Module, layer: str, x: torch.Tensor, classes: list[int], method: str = "gradcam"
) -> np.ndarray:
    """(N, H, W) maps in [0, 1] for normalised inputs `x` and one target class per image."""
    module = net.get_submodule(layer)
    probe: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, o: probe.append(o))
    was_training = net.training
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            net.eval()
            with torch.no_grad():
                net(x[:1])
            reshape = vit_tokens_to_maps if probe[0].ndim == 3 else None
            handle.remove()
            cam = METHODS[method](model=net, target_layers=[module], reshape_transform=reshape)
            try:
                maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes])
            finally:
                cam.activations_and_grads.release()
    finally:
        handle.remove()
        net.train(was_training)
    return np.nan_to_num(maps.astype(np.float32))


def overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Float RGB (H, W, 3) in [0, 1] plus a map → uint8 RGB heat-map overlay."""
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return show_cam_on_image(image.astype(np.float32), cam, use_rgb=True)


def peak(cam: np.ndarray) -> tuple[int, int]:
    """(row, column) of the map's maximum."""
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(row), int(col)


def pointing_game(maps: np.ndarray, boxes: torch.Tensor) -> float:
    """Fraction of images whose CAM maximum falls inside the object's box (x0, y0, x1, y1),
    pixel coordinates, x1/y1 exclusive."""
    hits = 0
    for cam, (x0, y0, x1, y1) in zip(maps, boxes.tolist(), strict=True):
        row, col = peak(cam)
        hits += int(x0 <= col < x1 and y0 <= row < y1)
    return hits / max(1, len(maps))

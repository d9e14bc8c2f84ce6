"""What the network is fed: mean, std and input size, decided once before data and network are
built, and handed to both (`train`, `eval`, `explain`, `summary` and `cnnlab.load` all call
`decide`).

Inputs, in order: the data config's mean/std and image size; the model's minimum input size (a
small image is resized up for a big network); and pretrained weights, torchvision's or timm's,
which bring the mean/std and crop size they were trained with (timm's also its interpolation;
`data.normalize=auto`). `data.input_size` set explicitly wins over the sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from cnnlab.core.checkpoint import is_weights_file
from cnnlab.core.errors import UserError


@dataclass(frozen=True)
class Preprocessing:
    mean: tuple[float, ...]  # per channel, pixel values in [0, 1]
    std: tuple[float, ...]
    input_size: int  # pixels per side the network sees (batches are resized to it)
    interpolation: str = "bilinear"  # how batches are resized to input_size (timm: bicubic often)

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) images → float in [0, 1] at the network's input size."""
        x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode=self.interpolation,
                align_corners=False,
                antialias=x.shape[-1] > self.input_size,
            )
            if self.interpolation == "bicubic":  # overshoots at edges; a uint8 resize clamps
                x = x.clamp_(0, 1)
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] → the normalised tensors the network expects."""
        mean, std = _statistics(self.mean, self.std, x.device)
        return (x - mean) / std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Eval preprocessing of uint8 (N, C, H, W) images."""
        return self.normalize(self.to_unit(images))


@lru_cache(maxsize=8)
def _statistics(mean: tuple, std: tuple, device: torch.device):
    # Made once per device, not per batch (a host→device copy each on a GPU).
    shape = (1, -1, 1, 1)
    return torch.tensor(mean, device=device).view(shape), torch.tensor(std, device=device).view(
        shape
    )


def decide(data_cfg: DictConfig, model_cfg: DictConfig) -> Preprocessing:
    channels = int(data_cfg.in_channels)
    mean, std = [float(v) for v in data_cfg.mean], [float(v) for v in data_cfg.std]
    if len(mean) != channels or len(std) != channels:
        raise UserError(
            f"data.mean/std have {len(mean)}/{len(std)} values, but data.in_channels={channels}"
        )
    normalize = data_cfg.get("normalize", "auto")
    given = data_cfg.get("input_size")  # a size asked for is the size used
    size = given or max(int(data_cfg.image_size), int(model_cfg.get("min_input_size") or 1))
    interpolation = "bilinear"
    weights = _timm_weights(model_cfg) or _torchvision_weights(model_cfg)
    if weights is not None and normalize == "auto":
        mean, std = _fit_channels(weights.mean, channels), _fit_channels(weights.std, channels)
        size = size if given else max(size, weights.crop_size[0])
        interpolation = _resize_mode(weights.interpolation)
    return Preprocessing(tuple(mean), tuple(std), int(size), interpolation)


@dataclass(frozen=True)
class _WeightsPreprocessing:  # the fields of torchvision's `transforms()` that cnnlab reads
    mean: Sequence[float]
    std: Sequence[float]
    crop_size: Sequence[int]
    interpolation: str = "bilinear"


def _timm_weights(model_cfg: DictConfig) -> _WeightsPreprocessing | None:
    """timm's `pretrained_cfg` of the weights named (metadata only: nothing is downloaded)."""
    net = model_cfg.get("net", {})
    weights = model_cfg.get("weights")
    if not str(net.get("_target_", "")).endswith(".timm_model") or is_weights_file(weights):
        return None
    try:
        import timm
    except ImportError:
        return None  # building the network says how to install it, in one line
    base = str(net.name).partition(".")[0]
    if not weights or not timm.is_model(base):
        return None  # no weights, or not a timm name: building the network says so
    try:
        cfg = timm.models.get_pretrained_cfg(timm_name(str(net.name), weights))
    except RuntimeError:  # "Invalid pretrained tag"
        cfg = None
    if cfg is None:
        tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{base}.*")]
        raise UserError(
            f"model.weights={weights!r} is not a pretrained tag of {base}; valid: DEFAULT, "
            f"{', '.join(tags) or '(none: no pretrained weights)'}, null, or a checkpoint file"
        )
    return _WeightsPreprocessing(cfg.mean, cfg.std, cfg.input_size[1:], cfg.interpolation)


def _resize_mode(interpolation) -> str:
    """The weights' interpolation as the mode batches are resized with: torchvision's is an
    InterpolationMode enum, timm's a string; bicubic is kept, anything else resizes bilinearly."""
    return (
        "bicubic"
        if str(getattr(interpolation, "value", interpolation)) == "bicubic"
        else "bilinear"
    )


def timm_name(name: str, weights: str | None) -> str:
    """`resnet18d` + weights `ra2_in1k` → `resnet18d.ra2_in1k`; DEFAULT or null keep the name."""
    return name if weights in (None, "DEFAULT") or "." in name else f"{name}.{weights}"


def _torchvision_weights(model_cfg: DictConfig):
    """The `transforms()` of a torchvision weights name (metadata only: nothing is downloaded)."""
    weights = model_cfg.get("weights")
    if not weights or is_weights_file(weights) or "name" not in model_cfg.get("net", {}):
        return None
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(model_cfg.net.name)
    except (KeyError, ValueError):
        return None  # not a torchvision model name: building the network says so in one line
    try:
        return enum[weights].transforms()
    except KeyError:
        raise UserError(
            f"model.weights={weights!r} is not a weights name of {model_cfg.net.name}; valid: "
            f"{', '.join(['DEFAULT', *enum.__members__])}, or a checkpoint/state-dict file"
        ) from None


def _fit_channels(values: Sequence[float], channels: int) -> list[float]:
    # Grayscale into an RGB network: the first conv averages its RGB filters, so average the stats.
    return list(values) if len(values) == channels else [sum(values) / len(values)] * channels

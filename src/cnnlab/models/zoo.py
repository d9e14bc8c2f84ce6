"""torchvision's classification models by name, adapted to the data: a new head for
`num_classes`, a first convolution for `in_channels`, optionally a CIFAR stem for ResNets.

`weights` is a torchvision weights name (`DEFAULT`, `IMAGENET1K_V1`, …) or null; torchvision
downloads them into `$TORCH_HOME/hub/checkpoints` once and reads them from there afterwards.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from cnnlab.core.errors import UserError
from cnnlab.models.anatomy import find_head


def available() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _set(net: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, module)


def adapt_first_conv(net: nn.Module, in_channels: int) -> None:
    """Replace the first convolution for `in_channels`; keep pretrained filters by averaging the
    RGB filters (grayscale) or repeating their mean, scaled so activations keep their size."""
    name, conv = next((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    if conv.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
    )
    with torch.no_grad():
        mean = conv.weight.mean(dim=1, keepdim=True)  # (out, 1, k, k)
        new.weight.copy_(mean.repeat(1, in_channels, 1, 1) * (conv.in_channels / in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set(net, name, new)


def use_cifar_stem(net: nn.Module) -> None:
    """ResNets for 32×32 inputs: a 3×3 stride-1 first conv and no max pool (keeps 32×32 → 4×4)."""
    if not (hasattr(net, "conv1") and hasattr(net, "maxpool")):
        raise UserError(f"model.cifar_stem=true applies to ResNets only, not {type(net).__name__}")
    net.conv1 = nn.Conv2d(net.conv1.in_channels, net.conv1.out_channels, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()


AUX_HEADS = {"googlenet": ("aux1", "aux2"), "inception_v3": ("AuxLogits",)}


def aux_note(name: str) -> str | None:
    """What cnnlab's build of `name` leaves out: torchvision's training-only auxiliary
    classifiers (cnnlab trains with one output), counted on the meta device."""
    if name not in AUX_HEADS:
        return None
    with torch.device("meta"):
        full = torchvision.models.get_model(name, weights=None, aux_logits=True, init_weights=False)
    heads = AUX_HEADS[name]
    params = sum(p.numel() for h in heads for p in getattr(full, h).parameters())
    return (
        f"{name} is built without its auxiliary classifier{'s' if len(heads) > 1 else ''} "
        f"({', '.join(heads)}: {params:,} parameters, used in training only; cnnlab trains on "
        f"the main output): torchvision's table counts them for inception_v3's weights, "
        f"not for googlenet's"
    )


def _offline_weights(name: str, weights: str, err: Exception) -> str:
    """Where to put a weights file that could not be downloaded."""
    url = torchvision.models.get_model_weights(name)[weights].url
    file = url.rsplit("/", 1)[-1]
    folder = f"{torch.hub.get_dir()}/checkpoints"
    return (
        f"model.weights={weights}: could not download {file} for {name} "
        f"({type(err).__name__}); put the file at $TORCH_HOME/hub/checkpoints/{file} "
        f"(here: {folder}/{file}; from {url}), or pass model.weights=<a local file>"
    )


def torchvision_model(
    *,
    name: str,
    num_classes: int,
    in_channels: int = 3,
    image_size: int,
    weights: str | None = None,
    cifar_stem: bool = False,
    dropout: float | None = None,
) -> nn.Module:
    names = available()
    if name not in names:
        raise UserError(
            f"model.net.name={name!r} is not a torchvision classification model; "
            f"valid: {', '.join(names)}"
        )
    kwargs: dict = {}
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False  # one output tensor; torchvision drops aux heads on load
        kwargs["init_weights"] = weights is None
    if name.startswith("vit_") and weights is None:
        kwargs["image_size"] = image_size  # position embeddings for this size
    if dropout is not None:
        kwargs["dropout"] = dropout
    try:
        net = torchvision.models.get_model(name, weights=weights, **kwargs)
    except (KeyError, ValueError) as err:
        if weights is not None and "weight" in str(err).lower() or isinstance(err, KeyError):
            enum = torchvision.models.get_model_weights(name)
            raise UserError(
                f"model.net.weights={weights!r} is not valid for {name}; valid: DEFAULT, "
                f"{', '.join(w.name for w in enum)}, null"
            ) from None
        raise
    except (OSError, RuntimeError) as err:  # URLError is an OSError: offline, proxy, DNS
        if weights is None:
            raise
        raise UserError(_offline_weights(name, weights, err)) from None
    head_name, head = find_head(net)
    if head.out_features != num_classes:
        _set(net, head_name, nn.Linear(head.in_features, num_classes))
    adapt_first_conv(net, in_channels)
    if cifar_stem:
        use_cifar_stem(net)
    return net

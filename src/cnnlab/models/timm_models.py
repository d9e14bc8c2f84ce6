"""Any timm model by name (`model=timm model.name=<name>`), adapted to the data: timm builds the
head for `num_classes` and the first convolution for `in_channels` itself (pretrained RGB filters
summed and scaled, as `adapt_first_conv` does for torchvision), and a ViT's position embeddings
for the input size.

`weights` is `DEFAULT` (the name's default pretrained tag), a tag (`ra2_in1k`: the weights
`<name>.ra2_in1k`), or null. timm reads pretrained weights from the Hugging Face Hub cache
(`$HF_HOME/hub`, default `~/.cache/huggingface/hub`) and downloads them there once; offline, a
missing file is one line saying which and where. The preprocessing the weights were trained with
(mean, std, input size, interpolation) comes from `pretrained_cfg`, read by
`cnnlab.core.preprocessing.decide` without building or downloading anything.
"""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from cnnlab.core.errors import UserError
from cnnlab.core.extras import need
from cnnlab.core.preprocessing import timm_name


def check_name(name: str) -> None:
    timm = need("timm")
    base = name.partition(".")[0]
    if not timm.is_model(base):
        close = difflib.get_close_matches(base, timm.list_models(), n=6, cutoff=0.6)
        raise UserError(
            f"model.name={name!r} is not a timm model; close names: {', '.join(close) or 'none'} "
            f'(all: python -c "import timm; print(timm.list_models())")'
        )


def _offline(name: str, err: Exception) -> str:
    from huggingface_hub import constants
    from timm.models import get_pretrained_cfg

    repo = getattr(get_pretrained_cfg(name), "hf_hub_id", None) or f"timm/{name}"
    folder = "models--" + repo.replace("/", "--")
    return (
        f"model.weights: could not download the pretrained weights of {name} from the Hugging Face "
        f"Hub ({type(err).__name__}); on a machine online run hf download {repo}, then copy "
        f"its cache folder {folder} into {constants.HF_HUB_CACHE} here, or pass "
        f"model.weights=<a local file>"
    )


def timm_model(
    *,
    name: str,
    num_classes: int,
    in_channels: int = 3,
    image_size: int,
    weights: str | None = None,
    drop_rate: float | None = None,
) -> nn.Module:
    timm = need("timm")
    check_name(name)
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_channels}
    if drop_rate is not None:
        kwargs["drop_rate"] = drop_rate
    model_name = timm_name(name, weights)
    if _fixed_input_size(model_name):
        kwargs["img_size"] = image_size  # ViTs: position embeddings for this size
    try:
        return timm.create_model(model_name, pretrained=weights is not None, **kwargs)
    except OSError as err:  # offline, proxy, DNS: huggingface_hub's errors are OSErrors
        if weights is None:
            raise
        raise UserError(_offline(model_name, err)) from None


def _fixed_input_size(name: str) -> bool:
    """Models built for one input size (ViTs' position embeddings, Swin's windows), as timm's
    own `pretrained_cfg` says: built here for the run's input size instead."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    return bool(cfg and cfg.fixed_input_size)

"""Why a network cannot be exported, in one line: the op the exporter had no translation for
(from its long report) and the layer that runs it (found by exporting each layer alone)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import torch
from torch import nn

_OP = (
    re.compile(r"op='([\w.:]+)'"),  # ONNX: No ONNX function found for <OpOverload(op='x.y', …)>
    re.compile(r"target=torch\.ops\.([\w.]+)"),
    re.compile(r"(aten::\w+)"),
)


def op_name(err: BaseException) -> str | None:
    text = str(err)
    for pattern in _OP:
        found = pattern.search(text)
        if found:
            return found.group(1)
    return None


def first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return (lines[0] if lines else type(err).__name__)[:300]


def failing_layer(net: nn.Module, example: torch.Tensor, serialize: Callable) -> str | None:
    """The first layer, in forward order, that fails to export on its own: 'name (Type)'."""
    seen: list[tuple[str, nn.Module, tuple]] = []
    hooks = [
        module.register_forward_hook(lambda m, args, out, name=name: seen.append((name, m, args)))
        for name, module in net.named_modules()
        if name and not list(module.children())
    ]
    try:
        with torch.no_grad():
            net(example)
    finally:
        for hook in hooks:
            hook.remove()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, module, args in seen:
            if len(args) != 1 or not isinstance(args[0], torch.Tensor) or args[0].shape[0] < 2:
                continue
            try:
                serialize(module, args[0], {})  # in memory: nothing written
            except Exception:  # noqa: BLE001 - any failure names this layer
                return f"{name} ({type(module).__name__})"
    return None


def describe(net: nn.Module, example: torch.Tensor, serialize: Callable, err: Exception) -> str:
    op, layer = op_name(err), failing_layer(net, example, serialize)
    where = f"layer {layer}" if layer else "a layer"
    return f"{where} uses {op}, which has no translation" if op else f"{where}: {first_line(err)}"

"""Receptive fields ("kernel size aka receptive field"): for each layer of a network, how many
input pixels one of its output units sees (its receptive field) and how many input pixels lie
between two neighbouring units (its jump, the effective stride). Down a chain of convolutions
and pools: field_out = field_in + (k − 1)·d·jump_in, jump_out = jump_in·s and the centre of the
first output unit, in input pixels, centre_out = centre_in + ((k − 1)·d/2 − p)·jump_in (k:
kernel, d: dilation, s: stride, p: padding). A residual block's projection (torchvision's
`downsample`, cnnlab's `shortcut`) is a side path with a smaller field: the block's body, the
longest path, sets it.
A network that branches otherwise (Inception's towers, DenseNet's concatenations, a
squeeze-and-excitation's global context) has no such chain: `fields` returns None rather than a
number that would mean nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

SIDE_PATHS = ("downsample", "shortcut")  # residual projections, by their module names


@dataclass(frozen=True)
class Field:
    size: int  # input pixels one output unit sees, along one side
    jump: int  # input pixels between two neighbouring output units
    centre: float = 0.0  # the input pixel at the centre of the first unit's field (row or column)

    def window(self, unit: int) -> tuple[int, int]:
        """The input rows (or columns) unit `unit` sees, first and last, before clipping."""
        first = round(self.centre + unit * self.jump - (self.size - 1) / 2)
        return first, first + self.size - 1


def geometry(module: nn.Module) -> tuple[int, int, int, int] | None:
    """(kernel, stride, dilation, padding) along the height of a layer that slides a window,
    else None."""

    def first(v) -> int:
        return int(v[0] if isinstance(v, (tuple, list)) else v)

    if isinstance(module, nn.Conv2d):
        k, s, d = first(module.kernel_size), first(module.stride), first(module.dilation)
        pad = module.padding  # "same" keeps the size (stride 1): half the span on each side
        return (
            k,
            s,
            d,
            {"same": (k - 1) * d // 2, "valid": 0}.get(pad, 0)
            if isinstance(pad, str)
            else first(pad),
        )
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        dilation = getattr(module, "dilation", 1)
        return first(module.kernel_size), first(stride), first(dilation), first(module.padding)
    return None


def _side(name: str) -> bool:
    return any(part in SIDE_PATHS for part in name.split("."))


# A sliding layer's call in a forward pass: (name, layer, input shape, output shape), no batch.
Call = tuple[str, nn.Module, tuple, tuple]


@contextlib.contextmanager
def recording(net: nn.Module) -> Iterator[list[Call]]:
    """The sliding layers' calls of the forward passes run inside, in the order they run."""
    calls: list[Call] = []

    def hook(name: str):
        def record(module, inputs, out):
            if isinstance(out, torch.Tensor) and inputs and isinstance(inputs[0], torch.Tensor):
                calls.append((name, module, tuple(inputs[0].shape[1:]), tuple(out.shape[1:])))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules()
               if n and geometry(m)]  # fmt: skip
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def fields(net: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Field] | None:
    """Each sliding layer's field and jump, by name, in the order the forward pass runs them;
    None when the layers do not form one chain (each one's input is the previous one's output,
    residual projections aside)."""
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    was_training = net.training
    net.eval()
    try:
        with recording(net) as calls, torch.no_grad():
            net(torch.zeros(1, *input_shape, device=device))
    finally:
        net.train(was_training)
    return chain(calls, input_shape)


def chain(calls: list[Call], input_shape: tuple[int, ...]) -> dict[str, Field] | None:
    """`fields` from the calls of one forward pass of an image of `input_shape`."""
    field, shape, out = Field(1, 1, 0.0), tuple(input_shape), {}
    for name, module, before, after in calls:
        if _side(name):
            continue
        if before != shape:
            return None
        kernel, stride, dilation, padding = geometry(module)
        span = (kernel - 1) * dilation
        field = Field(field.size + span * field.jump, field.jump * stride,
                      field.centre + (span / 2 - padding) * field.jump)  # fmt: skip
        out[name], shape = field, after
    return out

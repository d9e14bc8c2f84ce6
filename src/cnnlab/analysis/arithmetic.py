"""The lecture's arithmetic for any network: output shape, activations, parameters and FLOPs per
layer, and the memory they add up to. No Lightning here: plain torch, usable from a notebook.

Conventions (the lecture's):
- activations: values stored per image. The input counts, and so does the output of every leaf
  layer that allocates one; in-place activations, Flatten, Identity and Dropout only re-use
  their input, so they add nothing. fp32 = 4 bytes; the backward pass keeps them all (×2).
- parameters include biases; training with SGD+momentum keeps 2 copies (×2), Adam 3 (×3).
- FLOPs come from `torch.utils.flop_counter`, which counts 2 per multiply-add; the lecture and
  torchvision quote multiply-adds (MACs), so both are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

FP32 = 4  # bytes per value
VIEWS = (nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Unflatten)


@dataclass
class Row:
    name: str
    kind: str
    shape: tuple[int, ...]  # one image's output, channels first
    activations: int  # values this layer stores per image (0 for views and in-place ops)
    params: int  # the layer's own parameters
    flops: int  # forward FLOPs per image (2 per multiply-add)


@dataclass
class Report:
    input_shape: tuple[int, ...]
    rows: list[Row] = field(default_factory=list)
    params: int = 0
    flops: int = 0

    @property
    def activations(self) -> int:
        """Values per image: the input plus every allocating layer's output."""
        return numel(self.input_shape) + sum(r.activations for r in self.rows)

    @property
    def macs(self) -> int:
        return self.flops // 2

    def memory(self, batch_size: int = 1) -> dict[str, int]:
        """Bytes: the lecture's memory lines for `batch_size` images."""
        act = self.activations * FP32 * batch_size
        par = self.params * FP32
        return {
            "activations (forward)": act,
            "activations (forward + backward, ×2)": 2 * act,
            "parameter memory": par,
            "training, SGD + momentum (params ×2 + activations ×2)": 2 * par + 2 * act,
            "training, Adam (params ×3 + activations ×2)": 3 * par + 2 * act,
        }


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _allocates(module: nn.Module) -> bool:
    return not isinstance(module, VIEWS) and not getattr(module, "inplace", False)


def analyze(net: nn.Module, input_shape: tuple[int, ...]) -> Report:
    """Run one image of `input_shape` (C, H, W) through `net` in eval mode and tabulate it."""
    leaves = [(n, m) for n, m in net.named_modules() if n and not list(m.children())]
    # Modules with their own parameters but children too (e.g. MultiheadAttention) are rows.
    leaves += [
        (n, m)
        for n, m in net.named_modules()
        if n and list(m.children()) and any(True for _ in m.parameters(recurse=False))
    ]
    order: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name):
        def record(_module, _inp, out):
            out = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(out, torch.Tensor):
                shapes[name] = tuple(out.shape[1:])
                order.setdefault(name, len(order))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, *input_shape))
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()
    prefix = type(net).__name__
    report = Report(
        input_shape=tuple(input_shape),
        params=sum(p.numel() for p in net.parameters()),
        flops=counter.get_total_flops(),
    )
    for name, module in sorted(
        ((n, m) for n, m in leaves if n in order), key=lambda x: order[x[0]]
    ):
        shape = shapes[name]
        report.rows.append(
            Row(
                name=name,
                kind=type(module).__name__,
                shape=shape,
                activations=numel(shape) if _allocates(module) else 0,
                params=sum(p.numel() for p in module.parameters(recurse=False)),
                flops=sum(counts.get(f"{prefix}.{name}", {}).values()),
            )
        )
    return report


def dense_params(in_features: int, out_features: int) -> int:
    """A fully connected layer: weights plus one bias per output (the lecture's 922M example)."""
    return in_features * out_features + out_features


def conv_params(kernel: int, c_in: int, c_out: int) -> int:
    """(F × F × C_in + 1) × C_out."""
    return (kernel * kernel * c_in + 1) * c_out


def conv_output_size(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """W_out = (W − F + 2P) / S + 1, rounded down as every framework does."""
    return (size - kernel + 2 * padding) // stride + 1

"""The lecture's arithmetic for any network: output shape, activations, parameters, FLOPs and
receptive field per layer, and the memory they add up to. No Lightning here: plain torch,
usable from a notebook.

Conventions (the lecture's):
- activations: values stored per image. The input counts, and so does the output of every leaf
  layer that allocates one; in-place activations, Flatten, Identity and Dropout only re-use
  their input, so they add nothing. fp32 = 4 bytes; the backward pass keeps them all (×2).
- parameters include biases; training with SGD+momentum keeps 2 copies (×2), Adam 3 (×3).
- FLOPs come from `torch.utils.flop_counter`, which counts 2 per multiply-add; the lecture and
  torchvision quote multiply-adds (MACs), so both are reported. The forward pass runs with
  gradients enabled: under `no_grad`, `nn.MultiheadAttention` takes a fused kernel the counter
  does not see (ViT-B/16 would lose 6.29 of its 17.56 GMACs).
- Counting needs shapes, not values: a network on the meta device (`on_meta`) is analysed in
  well under a second whatever its size (ViT-H/14 at 518 px: 1.02 TMACs).
- A layer with parameters that the forward pass never runs (an auxiliary classifier used in
  training only, such as Inception's) has no row; its parameters still count in `params` and
  are listed in `unused`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from unittest import mock

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.analysis import receptive
from cnnlab.analysis.receptive import Field

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
    field: Field | None = None  # a sliding layer's receptive field and jump (receptive.py)


@dataclass
class Report:
    input_shape: tuple[int, ...]
    rows: list[Row] = field(default_factory=list)
    params: int = 0
    flops: int = 0
    unused: list[tuple[str, int]] = field(default_factory=list)  # (layer, params) never run
    notes: list[str] = field(default_factory=list)  # what the totals include or leave out

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


def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """`build()` on the meta device: parameters with shapes and no memory or initialisation.
    Builders that compute with tensors (RegNet derives its widths that way) cannot run there:
    they are built on the CPU with `torch.nn.init` switched off (the memory is never touched)
    and moved."""
    try:
        with torch.device("meta"):
            return build()
    except Exception:  # noqa: BLE001 - wrapped as cnnlab's build error; a real fault recurs below
        with _no_init():
            return build().to("meta")


@contextlib.contextmanager
def _no_init():
    """Every in-place initialiser of torch.nn.init returns its tensor untouched."""
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(mock.patch.object(nn.init, name, lambda t, *a, **k: t))
        yield


def analyze(net: nn.Module, input_shape: tuple[int, ...]) -> Report:
    """Run one image of `input_shape` (C, H, W) through `net` in eval mode and tabulate it."""
    named = [(n, m) for n, m in net.named_modules() if n]
    # Leaves, and modules with parameters of their own and children too (MultiheadAttention).
    leaves = [
        (n, m)
        for n, m in named
        if not list(m.children()) or any(True for _ in m.parameters(recurse=False))
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

    handles = [m.register_forward_hook(hook(n)) for n, m in named]
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    was_training = net.training
    net.eval()
    try:
        with (
            receptive.recording(net) as calls,
            torch.enable_grad(),
            FlopCounterMode(display=False) as counter,
        ):
            out = net(torch.zeros(1, *input_shape, device=device))
        unused = _unused(named, out, net)
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()
    prefix = type(net).__name__

    def flops(name: str) -> int:
        return sum(counts.get(f"{prefix}.{name}", {}).values())

    report = Report(
        input_shape=tuple(input_shape),
        params=sum(p.numel() for p in net.parameters()),
        flops=counter.get_total_flops(),
        unused=unused,
    )
    chain = receptive.chain(calls, input_shape) or {}  # the same pass's sliding layers
    rows = sorted(((n, m) for n, m in leaves if n in order), key=lambda x: order[x[0]])
    for name, module in rows:
        shape = shapes[name]
        # A row with children (MultiheadAttention) carries its own FLOPs (attention matmuls,
        # in-projection); its child rows (out_proj) carry theirs.
        inner = sum(flops(n) for n, _ in rows if n.startswith(f"{name}."))
        report.rows.append(
            Row(
                name=name,
                kind=type(module).__name__,
                shape=shape,
                activations=numel(shape) if _allocates(module) else 0,
                params=sum(p.numel() for p in module.parameters(recurse=False)),
                flops=flops(name) - inner,
                field=chain.get(name),
            )
        )
    return report


def _unused(named: list[tuple[str, nn.Module]], out, net: nn.Module) -> list[tuple[str, int]]:
    """The outermost modules none of whose parameters the output depends on (autograd says:
    modules used through their weights alone, as MultiheadAttention's out_proj, count as used).
    `.grad` is left untouched; frozen parameters are taken as used."""
    out = out[0] if isinstance(out, (tuple, list)) else out
    params = [p for p in net.parameters() if p.requires_grad]
    if not isinstance(out, torch.Tensor) or not out.requires_grad or not params:
        return []
    reached = _graph_leaves(out)
    idle = {id(p) for p in params if id(p) not in reached}
    found: list[tuple[str, int]] = []
    for name, module in named:
        own = list(module.parameters())
        if own and all(id(p) in idle for p in own):
            if not any(name.startswith(f"{n}.") for n, _ in found):
                found.append((name, sum(p.numel() for p in own)))
    return found


def _graph_leaves(out: torch.Tensor) -> set[int]:
    """The ids of the tensors the output's autograd graph reaches: those `autograd.grad` would
    give a gradient, found by walking the graph instead of running the backward pass."""
    leaves: set[int] = set()
    seen: dict[int, object] = {}  # id → node: kept alive, so no id is reused while walking
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen[id(node)] = node
        if (variable := getattr(node, "variable", None)) is not None:  # AccumulateGrad
            leaves.add(id(variable))
        stack.extend(child for child, _ in node.next_functions)
    return leaves


def dense_params(in_features: int, out_features: int) -> int:
    """A fully connected layer: weights plus one bias per output (the lecture's 922M example)."""
    return in_features * out_features + out_features


def conv_params(kernel: int, c_in: int, c_out: int) -> int:
    """(F × F × C_in + 1) × C_out."""
    return (kernel * kernel * c_in + 1) * c_out


def conv_output_size(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """W_out = (W − F + 2P) / S + 1, rounded down as every framework does."""
    return (size - kernel + 2 * padding) // stride + 1

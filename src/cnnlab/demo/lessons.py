"""What the playground's tabs compute, without Gradio (the page in `playground.py` only draws
and wires): a kernel on a photo, the convolution arithmetic, receptive-field tables and a look
inside a trained network. Every number comes from torch and `cnnlab.analysis`."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.analysis import kernels
from cnnlab.analysis.arithmetic import analyze, conv_params, dense_params, on_meta
from cnnlab.core.errors import UserError
from cnnlab.core.tables import markdown_table

LONGEST = 640  # an upload is scaled down to this many pixels on its longer side
PHOTOS = ("China (scikit-learn)", "flower (scikit-learn)", "a digit (MNIST test split)")


@functools.lru_cache(maxsize=len(PHOTOS))
def photo(name: str, data_dir: str | Path) -> np.ndarray:
    """A bundled picture (offline): (H, W, 3) or (H, W) uint8, read once per server (every
    kernel answer reads it; callers do not modify it)."""
    if name == PHOTOS[2]:
        from cnnlab.data.sources import mnist_sample

        return mnist_sample(str(data_dir)).test.images[0, 0].numpy()
    if name not in PHOTOS:
        raise UserError(f"photo {name!r}; valid: {', '.join(PHOTOS)}")
    from sklearn.datasets import load_sample_images

    return load_sample_images().images[PHOTOS.index(name)]


def read_upload(path: Path) -> np.ndarray:
    """An uploaded file read as `predict` reads files (upright, RGB), at most LONGEST pixels on
    its longer side; an unreadable file raises its one line."""
    from PIL import Image

    from cnnlab.data.pixels import load_rgb

    image = load_rgb(str(path))
    image.thumbnail((LONGEST, LONGEST), Image.BILINEAR)
    return np.asarray(image)


def parse_kernel(text: str) -> torch.Tensor:
    """Rows on lines, cells split by spaces or commas: "-1 0 1 / -2 0 2 / -1 0 1"."""
    rows = [line.replace(",", " ").split() for line in str(text).strip().splitlines()]
    return kernels.kernel([r for r in rows if r])


def kernel_text(name: str) -> str:
    rows = kernels.PRESETS[name]
    return "\n".join(" ".join(f"{v:.4g}" for v in row) for row in rows)


def cell_markdown(cell: kernels.Cell, row: int, col: int) -> str:
    """The lecture's z = relu(wᵀx + b) at one output cell, channel by channel."""
    lines = [f"**Output cell ({row}, {col})**: z = relu(wᵀx + b)", ""]
    for c in range(cell.window.shape[0]):
        pairs = zip(cell.kernel.flatten().tolist(), cell.window[c].flatten().tolist(), strict=True)
        terms = " + ".join(f"{w:.3g}·{x:.3f}" for w, x in pairs)
        lines.append(f"- channel {c}: wᵀx = {terms} = **{float(cell.per_channel[c]):.4f}**")
    lines += ["", f"Σ over channels + b = {float(cell.per_channel.sum()):.4f} + {cell.bias:g} = "
              f"**{cell.total:.4f}**; relu → **{cell.relu:.4f}**"]  # fmt: skip
    return "\n".join(lines)


def arithmetic(size: int, kernel: int, padding: int, stride: int, dilation: int, c_in: int,
               c_out: int) -> tuple[str, dict]:  # fmt: skip
    """The arithmetic tab's text and numbers; an impossible combination raises its reason."""
    for name, value in (("C_in", c_in), ("C_out", c_out)):
        if value < 1:
            raise UserError(f"{name}={value}; valid: a whole number ≥ 1")
    out = kernels.output_size(size, kernel, padding, stride, dilation)
    numbers = {"output": out, "effective_kernel": kernels.effective_size(kernel, dilation),
               "conv_params": conv_params(kernel, c_in, c_out),
               "dense_params": dense_params(size * size * c_in, out * out * c_out)}  # fmt: skip
    try:
        numbers["pool_output"] = kernels.output_size(size, 2, 0, 2, pool=True)
    except UserError:
        numbers["pool_output"] = None
    text = (
        f"W_o = ⌊(W − E + 2P)/S⌋ + 1 = ⌊({size} − {numbers['effective_kernel']} + 2·{padding})"
        f"/{stride}⌋ + 1 = **{out}** (E = D·(F − 1) + 1 = {numbers['effective_kernel']})\n\n"
        f"Parameters: (F·F·Cᵢ + 1)·C_o = ({kernel}·{kernel}·{c_in} + 1)·{c_out} = "
        f"**{numbers['conv_params']:,}**; a dense layer from the same {size}×{size}×{c_in} input "
        f"to the same {out}×{out}×{c_out} output: **{numbers['dense_params']:,}** "
        f"({numbers['dense_params'] / numbers['conv_params']:.2g}× more). The lecture's dense "
        f"layer on a 640×480×3 photo → 1,000 units: {dense_params(640 * 480 * 3, 1000):,}."
    )
    return text, numbers


ARITHMETIC_PRESETS = {  # W, F, P, S, dilation, C_in, C_out; the page opens on the first
    "a small grid to watch (W=5, F=3, P=1, S=2)": (5, 3, 1, 2, 1, 1, 1),
    "AlexNet's conv1 (the lecture: 34,944 vs 4.5 × 10¹⁰)": (227, 11, 0, 4, 1, 3, 96),
    "the lecture's ConvNet, conv1": (28, 5, 2, 1, 1, 1, 32),
    "dilated (W=7, F=3, D=2)": (7, 3, 0, 1, 2, 1, 1),
}


def pooled(size: int, seed: int = 0) -> str:
    """2×2 max and average pooling of a seeded W×W grid of digits (W ≤ 8 shown)."""
    side = min(size, 8)
    grid = torch.randint(0, 10, (side, side), generator=torch.Generator().manual_seed(seed))
    if side < 2:
        return "2×2 pooling needs a grid of at least 2×2."
    show = [[f"{v:g}" for v in row] for row in grid.tolist()]
    out = [f"**{side}×{side} grid**", markdown_table([""] * side, show)]
    for kind in ("max", "average"):
        result = kernels.pool(grid, kind)
        cells = [[f"{v:g}" for v in row] for row in result.tolist()]
        out += [f"**2×2 {kind} pooling, stride 2**", markdown_table([""] * len(cells[0]), cells)]
    return "\n\n".join(out)


def _stack(name: str) -> tuple[nn.Module, tuple[int, int, int]]:
    import torchvision

    from cnnlab.models.convnet import ConvNet

    vgg_block = [nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
                 nn.ReLU(), nn.MaxPool2d(2, 2)]  # fmt: skip
    stacks = {
        "the lecture's ConvNet (28×28 digits)": (
            lambda: ConvNet(num_classes=10, in_channels=1, image_size=28), (1, 28, 28)),
        "AlexNet's conv1 (227×227×3)": (lambda: nn.Sequential(nn.Conv2d(3, 96, 11, 4)),
                                        (3, 227, 227)),
        "a VGG block (224×224×3)": (lambda: nn.Sequential(*vgg_block), (3, 224, 224)),
        **{label: (getattr(torchvision.models, fn), (3, 224, 224)) for label, fn in
           (("AlexNet", "alexnet"), ("VGG-16", "vgg16"), ("ResNet-18", "resnet18"),
            ("ResNet-50", "resnet50"))},
    }  # fmt: skip
    if name not in stacks:
        raise UserError(f"stack {name!r}; valid: {', '.join(stacks)}")
    build, shape = stacks[name]
    return on_meta(build), shape


STACKS = ("the lecture's ConvNet (28×28 digits)", "AlexNet's conv1 (227×227×3)",
          "a VGG block (224×224×3)", "AlexNet", "VGG-16", "ResNet-18", "ResNet-50")  # fmt: skip


def receptive_table(name: str) -> tuple[str, list[dict]]:
    """Per sliding layer of a preset stack: output shape, parameters, receptive field, jump."""
    report = analyze(*_stack(name))  # `make summary`'s rows, receptive fields included
    rows = [{"layer": r.name, "type": r.kind, "output": "×".join(map(str, r.shape)),
             "params": r.params, "field": r.field.size, "jump": r.field.jump}
            for r in report.rows if r.field]  # fmt: skip
    cells = [[r["layer"], r["type"], r["output"], f"{r['params']:,}",
              f"{r['field']}×{r['field']}", str(r["jump"])] for r in rows]  # fmt: skip
    header = ["layer", "type", "output", "parameters", "receptive field", "jump"]
    table = markdown_table(header, cells)
    return table, rows

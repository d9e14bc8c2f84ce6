"""Deployment formats, one module each in this package, found by name (`get("onnx")`): each
module's `EXPORTER` says the file's ending, the packages it needs, how to make the file's bytes in
memory (the caller writes them, so a full disk is an OSError naming the file, for every format),
how to run the file and how to read cnnlab's metadata (class names, mean, std, input size,
channels, temperature) back from inside it. Every format takes normalised float images
(N, C, S, S) with a dynamic batch dimension and returns logits. Adding a format is one module
here and its name in `core/choices.py` (`EXPORT_FORMATS`, what the config check accepts)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.core.files import write_atomic

INPUT, OUTPUT = "images", "logits"
# Batches of normalised training images (float32 numpy), for formats that calibrate (int8).
Calibration = Callable[[], Iterator[np.ndarray]]
Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Exporter:
    name: str
    suffix: str  # the file's ending
    serialize: Callable[[nn.Module, torch.Tensor, dict, Calibration | None], bytes]
    load: Callable[[Path], Runner]  # the file, loaded back: float32 images → logits
    read_metadata: Callable[[Path], dict]
    needs: tuple[str, ...] = ()  # modules it imports (the `export` extra)
    # An approximation of the network (int8): parity is how often its top class is PyTorch's,
    # not the largest logit difference; it calibrates on training images.
    lossy: bool = False


def get(name: str) -> Exporter:
    """The format's exporter (`name` is one of choices.EXPORT_FORMATS: the config check said)."""
    return importlib.import_module(f"{__name__}.{name}").EXPORTER


class Deployable(nn.Module):
    """The network as shipped: normalised float images (N, C, S, S) in, logits out, divided by
    the calibration temperature when one is stored (argmax unchanged)."""

    def __init__(self, net: nn.Module, temperature: float = 1.0):
        super().__init__()
        self.net = net
        self.temperature = temperature

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.net(images)
        return logits / self.temperature if self.temperature != 1.0 else logits


META_FILE = "cnnlab.json"  # the metadata's extra file inside TorchScript and .pt2 files


def module_runner(module: nn.Module) -> Runner:
    """A loaded torch module as a runner: numpy images in, numpy logits out."""
    return lambda x: module(torch.from_numpy(x)).detach().numpy()


def extra_metadata(read: Callable[[dict], object]) -> dict:
    """cnnlab's metadata from a torch file's extra files; `read(files)` fills them in place."""
    files = {META_FILE: ""}
    read(files)
    return json.loads(files[META_FILE])


def batch_dim() -> dict:
    return {0: torch.export.Dim("batch", min=1)}


def save(fmt: str, model: nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    """The format's file at `path`, written whole or not at all (formats that need no
    calibration: the benchmarks and tests)."""
    write_atomic(Path(path), get(fmt).serialize(model, example, meta, None))


def runner(fmt: str, path: Path) -> Runner:
    """The exported file, loaded back: float32 images (N, C, S, S) → logits, as numpy."""
    return get(fmt).load(Path(path))


def read_metadata(fmt: str, path: Path) -> dict:
    """cnnlab's metadata, read back from inside the exported file."""
    return get(fmt).read_metadata(Path(path))

"""TorchScript (traced), cnnlab's metadata in an extra file `cnnlab.json` inside it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from torch import nn

from cnnlab.inference.exporters import (
    META_FILE,
    Calibration,
    Exporter,
    Runner,
    extra_metadata,
    module_runner,
)


def serialize(model: nn.Module, example: torch.Tensor, meta: dict, _: Calibration | None) -> bytes:
    # Tracing records the ops run on `example`; sizes read from the input (x.size(0)) stay
    # symbolic, so any batch size runs. The parity check runs another batch size to prove it.
    traced = torch.jit.trace(model, example, check_trace=False)
    out = io.BytesIO()  # not a path: torch's C++ writer aborts the process on a full disk
    torch.jit.save(traced, out, _extra_files={META_FILE: json.dumps(meta)})
    return out.getvalue()


def load(path: Path) -> Runner:
    return module_runner(torch.jit.load(str(path)))


def read_metadata(path: Path) -> dict:
    return extra_metadata(lambda files: torch.jit.load(str(path), _extra_files=files))


EXPORTER = Exporter(
    name="torchscript",
    suffix=".torchscript.pt",
    serialize=serialize,
    load=load,
    read_metadata=read_metadata,
)

"""TorchScript (traced), cnnlab's metadata in an extra file `cnnlab.json` inside it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from torch import nn

from cnnlab.inference.exporters import Calibration, Exporter, Runner


def serialize(model: nn.Module, example: torch.Tensor, meta: dict, _: Calibration | None) -> bytes:
    # Tracing records the ops run on `example`; sizes read from the input (x.size(0)) stay
    # symbolic, so any batch size runs. The parity check runs another batch size to prove it.
    traced = torch.jit.trace(model, example, check_trace=False)
    out = io.BytesIO()  # not a path: torch's C++ writer aborts the process on a full disk
    torch.jit.save(traced, out, _extra_files={"cnnlab.json": json.dumps(meta)})
    return out.getvalue()


def load(path: Path) -> Runner:
    module = torch.jit.load(str(path))
    return lambda x: module(torch.from_numpy(x)).detach().numpy()


def read_metadata(path: Path) -> dict:
    files = {"cnnlab.json": ""}
    torch.jit.load(str(path), _extra_files=files)
    return json.loads(files["cnnlab.json"])


EXPORTER = Exporter(
    name="torchscript",
    suffix=".torchscript.pt",
    serialize=serialize,
    load=load,
    read_metadata=read_metadata,
)

"""torch.export's ExportedProgram (.pt2), cnnlab's metadata in an extra file `cnnlab.json`."""

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
    batch_dim,
    extra_metadata,
    module_runner,
)


def serialize(model: nn.Module, example: torch.Tensor, meta: dict, _: Calibration | None) -> bytes:
    program = torch.export.export(model, (example,), dynamic_shapes=(batch_dim(),))
    out = io.BytesIO()  # not a path: torch's C++ writer aborts the process on a full disk
    torch.export.save(program, out, extra_files={META_FILE: json.dumps(meta)})
    return out.getvalue()


def load(path: Path) -> Runner:
    return module_runner(torch.export.load(str(path)).module())


def read_metadata(path: Path) -> dict:
    return extra_metadata(lambda files: torch.export.load(str(path), extra_files=files))


EXPORTER = Exporter(
    name="exported_program",
    suffix=".pt2",
    serialize=serialize,
    load=load,
    read_metadata=read_metadata,
)

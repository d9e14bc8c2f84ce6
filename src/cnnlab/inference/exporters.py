"""Three deployment formats of one network, each with a dynamic batch dimension and cnnlab's
metadata (class names, mean, std, input size, channels, temperature) inside the file:
ONNX (`metadata_props`), TorchScript and torch.export's ExportedProgram (an extra file
`cnnlab.json`). Each serializer makes the file's bytes in memory (the caller writes them, so a
full disk is an OSError naming the file, for every format); each `runner` loads a file back."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.core import choices
from cnnlab.core.files import write_atomic

# format → file ending
FORMATS = dict(zip(choices.EXPORT_FORMATS, (".onnx", ".torchscript.pt", ".pt2"), strict=True))
INPUT, OUTPUT = "images", "logits"


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


def _batch_dim() -> dict:
    return {0: torch.export.Dim("batch", min=1)}


def onnx_bytes(model: nn.Module, example: torch.Tensor, meta: dict) -> bytes:
    import onnx

    program = torch.onnx.export(
        model,
        (example,),
        None,  # in memory: the command writes the bytes (a full disk is then its one line)
        dynamo=True,
        external_data=False,  # one self-contained file (networks up to 2 GB)
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_shapes=(_batch_dim(),),  # by position: any forward argument name
        verbose=False,
    )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in meta.items()})
    return proto.SerializeToString()


def torchscript_bytes(model: nn.Module, example: torch.Tensor, meta: dict) -> bytes:
    # Tracing records the ops run on `example`; sizes read from the input (x.size(0)) stay
    # symbolic, so any batch size runs. The parity check runs another batch size to prove it.
    traced = torch.jit.trace(model, example, check_trace=False)
    out = io.BytesIO()  # not a path: torch's C++ writer aborts the process on a full disk
    torch.jit.save(traced, out, _extra_files={"cnnlab.json": json.dumps(meta)})
    return out.getvalue()


def exported_program_bytes(model: nn.Module, example: torch.Tensor, meta: dict) -> bytes:
    program = torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(),))
    out = io.BytesIO()  # as for TorchScript
    torch.export.save(program, out, extra_files={"cnnlab.json": json.dumps(meta)})
    return out.getvalue()


# Each format's file, made in memory (nothing touches the disk until the command writes it).
SERIALIZERS: dict[str, Callable[[nn.Module, torch.Tensor, dict], bytes]] = {
    "onnx": onnx_bytes,
    "torchscript": torchscript_bytes,
    "exported_program": exported_program_bytes,
}


def save(fmt: str, model: nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    """The format's file at `path`, written whole or not at all."""
    write_atomic(Path(path), SERIALIZERS[fmt](model, example, meta))


def runner(fmt: str, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The exported file, loaded back: float32 images (N, C, S, S) → logits, as numpy."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: session.run([OUTPUT], {INPUT: x})[0]
    module = (
        torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()
    )
    return lambda x: module(torch.from_numpy(x)).detach().numpy()


def read_metadata(fmt: str, path: Path) -> dict:
    """cnnlab's metadata, read back from inside the exported file."""
    if fmt == "onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        return {p.key: json.loads(p.value) for p in proto.metadata_props}
    files = {"cnnlab.json": ""}
    if fmt == "torchscript":
        torch.jit.load(str(path), _extra_files=files)
    else:
        torch.export.load(str(path), extra_files=files)
    return json.loads(files["cnnlab.json"])

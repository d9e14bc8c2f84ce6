"""ONNX (run by onnxruntime), cnnlab's metadata in the model's `metadata_props`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from cnnlab.inference.exporters import INPUT, OUTPUT, Calibration, Exporter, Runner, batch_dim


def serialize(model: nn.Module, example: torch.Tensor, meta: dict, _: Calibration | None) -> bytes:
    import onnx

    program = torch.onnx.export(
        model,
        (example,),
        None,  # in memory: the command writes the bytes (a full disk is then its one line)
        dynamo=True,
        external_data=False,  # one self-contained file (networks up to 2 GB)
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_shapes=(batch_dim(),),  # by position: any forward argument name
        verbose=False,
    )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in meta.items()})
    return proto.SerializeToString()


def load(path: Path) -> Runner:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT], {INPUT: x})[0]


def read_metadata(path: Path) -> dict:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    # onnxruntime's tools add their own marks (onnx.infer, onnx.quant.pre_process), not JSON
    props = [p for p in proto.metadata_props if not p.key.startswith("onnx.")]
    return {p.key: json.loads(p.value) for p in props}


EXPORTER = Exporter(
    name="onnx",
    suffix=".onnx",
    serialize=serialize,
    load=load,
    read_metadata=read_metadata,
    needs=("onnx", "onnxruntime", "onnxscript"),
)

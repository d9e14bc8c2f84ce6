"""ONNX with int8 weights and activations: static post-training quantization by onnxruntime's
tools (QDQ, weights per channel), its activation ranges calibrated on training images. The fp32
ONNX file is made first (`onnx.serialize`), so the metadata and the dynamic batch carry over; the
file runs in onnxruntime like any ONNX model. Int8 approximates the network: `cnnlab-export`
checks how often its top class is PyTorch's, and `make bench` measures accuracy and speed
against fp32 ONNX."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from cnnlab.core.errors import UserError
from cnnlab.inference.exporters import INPUT, Calibration, Exporter, onnx


def serialize(
    model: nn.Module, example: torch.Tensor, meta: dict, calibration: Calibration | None
) -> bytes:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration is None:
        raise UserError("format=onnx_int8 needs calibration images (the export command gives them)")

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration())

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    with tempfile.TemporaryDirectory() as tmp:
        fp32, ready, int8 = (Path(tmp) / f"{n}.onnx" for n in ("fp32", "ready", "int8"))
        fp32.write_bytes(onnx.serialize(model, example, meta, None))
        # Shapes inferred and graph tidied first, as onnxruntime's guide asks of its input.
        quant_pre_process(str(fp32), str(ready), skip_symbolic_shape=True)
        quantize_static(str(ready), str(int8), Batches(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)  # fmt: skip
        return int8.read_bytes()


EXPORTER = Exporter(
    name="onnx_int8",
    suffix=".int8.onnx",
    serialize=serialize,
    load=onnx.load,
    read_metadata=onnx.read_metadata,
    needs=("onnx", "onnxruntime", "onnxscript"),
    lossy=True,
)

"""Inference images/s: a network exported by `cnnlab-export` (ONNX, run by onnxruntime) against
the same network in PyTorch eager mode (eval, no_grad), in the same process, batches taking
turns, with the eager-vs-eager ratio as the noise floor. `python benchmarks/inference.py` alone,
or as part of `make bench`."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_common import REPS, rows, stats  # noqa: E402


def _networks():
    import torchvision

    from cnnlab.models.convnet import ConvNet

    yield "ConvNet 1×28×28, batch 256", ConvNet(in_channels=1, num_classes=10, image_size=28), (
        256, 1, 28, 28)  # fmt: skip
    yield "ResNet-18 3×224×224, batch 32", torchvision.models.resnet18(), (32, 3, 224, 224)


def _rate(run, x, batches: int) -> float:
    run(x)  # warm-up: first-call allocations and kernel choices
    start = time.perf_counter()
    for _ in range(batches):
        run(x)
    return batches * len(x) / (time.perf_counter() - start)


def inference_rows(batches: int = 5) -> None:
    import onnxruntime

    from cnnlab.inference.exporters import INPUT, save

    threads = torch.get_num_threads()
    for name, net, shape in _networks():
        net.eval()
        x = torch.randn(*shape)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "net.onnx"
            save("onnx", net, x[:2], path, {})
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads  # the same cores as PyTorch
            session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        xn = x.numpy()

        def eager(batch, net=net):
            with torch.no_grad():
                return net(batch)

        def ort(batch, session=session):
            return session.run(None, {INPUT: batch})

        ours, plain, again = [], [], []
        for _ in range(REPS):  # taking turns: a slow spell of the machine hits all three
            ours.append(_rate(ort, xn, batches))
            plain.append(_rate(eager, x, batches))
            again.append(_rate(eager, x, batches))
        ratio = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
        floor = statistics.median(a / p for a, p in zip(again, plain, strict=True))
        rows.append(
            (
                f"inference images/s, {name}: exported ONNX in onnxruntime (cnnlab column) vs "
                f"PyTorch eager (noise floor eager ÷ eager {floor:.2f}×)",
                stats(ours),
                stats(plain),
                f"{ratio:.2f}×",
            )
        )


if __name__ == "__main__":
    inference_rows()
    print("| measure | cnnlab | plain PyTorch | ratio |\n|---|---|---|---|")
    print("\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows))

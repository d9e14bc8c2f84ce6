"""int8 ONNX (`format=onnx_int8`) against fp32 ONNX, both run by onnxruntime on the same cores:
test accuracy on the 1,000 held-out MNIST-sample digits of a trained ConvNet (the default recipe)
and a trained ResNet-18, and images/s with the two sessions taking turns (fp32 ÷ fp32 is the
noise floor). The networks are trained here through `cnnlab.train` and exported through
`cnnlab-export`'s own function. `python benchmarks/int8.py` alone, or as part of `make bench`."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_common import REPS, rows, stats  # noqa: E402

NETWORKS = (
    ("ConvNet (default recipe)", ()),
    ("ResNet-18 (torchvision, 32 px)", ("model=resnet18", "trainer.max_epochs=3")),
)
QUIET = ("logger=none", "callbacks.gradcam=null", "callbacks.diagnostics=null")


def _session(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same cores as PyTorch
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _rate(session, x: np.ndarray, batches: int = 5) -> float:
    session.run(None, {"images": x})  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        session.run(None, {"images": x})
    return batches * len(x) / (time.perf_counter() - start)


def _exported(ckpt: Path, fmt: str, out: Path) -> Path:
    import cnnlab
    from cnnlab.commands.export import export

    cfg = cnnlab.config(f"ckpt_path={ckpt}", f"format={fmt}", f"out_dir={out}", command="export")
    return export(cfg)["path"]


def int8_rows() -> None:
    import cnnlab
    from cnnlab.training import build

    for name, overrides in NETWORKS:
        with tempfile.TemporaryDirectory() as tmp:
            run = cnnlab.train(*overrides, *QUIET, f"paths.output_dir={tmp}/run", quiet=True)
            model = cnnlab.load(run.best_checkpoint)
            _, _, dm, _ = build.restore(model.config)
            dm.setup("test")
            images, targets = zip(*dm.test_set, strict=True)
            x = model.preprocess(torch.stack(images)).float().numpy()
            truth = np.array([int(t) for t in targets])
            fp32, int8 = (_session(_exported(run.best_checkpoint, f, Path(tmp) / f))
                          for f in ("onnx", "onnx_int8"))  # fmt: skip
            acc = {k: float((s.run(None, {"images": x})[0].argmax(1) == truth).mean())
                   for k, s in (("fp32", fp32), ("int8", int8))}  # fmt: skip
            batch = x[:256]
            ours, plain, again = [], [], []
            for _ in range(REPS):  # taking turns: a slow spell of the machine hits all three
                ours.append(_rate(int8, batch))
                plain.append(_rate(fp32, batch))
                again.append(_rate(fp32, batch))
        ratio = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
        floor = statistics.median(a / p for a, p in zip(again, plain, strict=True))
        rows.append((
            f"int8 ONNX vs fp32 ONNX, {name}: test accuracy on {len(truth)} digits (cnnlab "
            f"column int8, the other fp32; the ratio column int8 − fp32)",
            f"{acc['int8']:.2%}", f"{acc['fp32']:.2%}",
            f"{(acc['int8'] - acc['fp32']) * 100:+.2f} points",
        ))  # fmt: skip
        rows.append((
            f"int8 ONNX vs fp32 ONNX, {name}: images/s, batch {len(batch)}, onnxruntime (noise "
            f"floor fp32 ÷ fp32 {floor:.2f}×)",
            stats(ours), stats(plain), f"{ratio:.2f}×",
        ))  # fmt: skip


if __name__ == "__main__":
    int8_rows()
    print("| measure | int8 | fp32 | ratio |\n|---|---|---|---|")
    print("\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows))

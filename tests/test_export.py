"""`export`: ONNX, TorchScript and ExportedProgram files with a dynamic batch, cnnlab's metadata
inside and beside them, a parity check on real images, and one-line failures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.data.mnist_sample import write_pngs
from cnnlab.inference import exporters, failures

REPO = Path(__file__).resolve().parents[1]
CKPT = "checkpoints/best.ckpt"


def _export(command, ckpt, tmp_path, fmt, *extra):
    proc = command("export", f"ckpt_path={ckpt}", f"format={fmt}", f"run_id={fmt}", *extra)
    return proc, tmp_path / "outputs" / "export" / "runs" / fmt


def _readme_snippet(folder: Path) -> Path:
    section = (REPO / "README.md").read_text().split("## Export", 1)[1].split("\n## ", 1)[0]
    (body,) = re.findall(r"```python\n# file: classify_onnx.py\n(.*?)```", section, flags=re.S)
    path = folder / "classify_onnx.py"
    path.write_text(body)
    return path


def test_onnx_export_checks_parity_and_runs_with_onnxruntime_and_numpy_alone(
    command, digits_run, tmp_path
):
    proc, out = _export(command, digits_run / CKPT, tmp_path, "onnx")
    assert proc.returncode == 0, proc.stderr
    delta = float(re.search(r"max \|Δ logit\| = (\S+) on 32 real images", proc.stdout).group(1))
    assert delta <= 1e-4
    model = out / "convnet.onnx"
    sidecar = json.loads((out / "convnet.onnx.json").read_text())
    inside = exporters.read_metadata("onnx", model)
    assert inside["class_names"] == sidecar["class_names"] and len(inside["class_names"]) == 10
    assert (inside["mean"], inside["std"], inside["input_size"], inside["channels"]) == (
        [0.1307], [0.3081], 28, 1)  # fmt: skip
    assert sidecar["parity"]["max_abs_logit_delta"] == pytest.approx(delta, rel=0.01)
    # Any batch size: the file was traced with 2 images and checked on 32; here 5.
    run = exporters.runner("onnx", model)
    assert run(np.zeros((5, 1, 28, 28), np.float32)).shape == (5, 10)

    # README's snippet, as a user runs it: no torch imported, the same answer as predict.
    digits = write_pngs(tmp_path / "digits")
    image = sorted((digits / "4 - four").glob("*.png"))[0]
    script = _readme_snippet(tmp_path)
    check = (
        "import runpy, sys; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__'); "
        "assert 'torch' not in sys.modules, 'the snippet imported torch'"
    )
    snippet = subprocess.run([sys.executable, "-c", check, str(script), str(model), str(image)],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert snippet.returncode == 0, snippet.stderr
    name, prob = snippet.stdout.strip().rsplit(" ", 1)
    proc = command("predict", f"ckpt_path={digits_run / CKPT}", f"images={image}", "run_id=p")
    row = (tmp_path / "outputs/predict/runs/p/predictions.csv").read_text().splitlines()[1]
    _, _, pred, expected = row.split(",")[:4]
    assert name == pred and float(prob) == pytest.approx(float(expected), abs=6e-5)  # 4 decimals


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "exported_program"])
def test_torch_formats_keep_a_dynamic_batch_and_the_metadata(command, digits_run, tmp_path, fmt):
    proc, out = _export(command, digits_run / CKPT, tmp_path, fmt)
    assert proc.returncode == 0, proc.stderr
    (model,) = [p for p in out.iterdir() if p.name.startswith("convnet.") and p.suffix != ".json"]
    assert exporters.read_metadata(fmt, model)["input_size"] == 28
    assert exporters.runner(fmt, model)(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)


def test_an_unfaithful_export_fails_and_leaves_no_file(command, digits_run, tmp_path):
    proc, out = _export(command, digits_run / CKPT, tmp_path, "onnx", "tolerance=0")
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and "onnx export of convnet is not faithful: parity:" in line
    assert not out.exists() or not [p for p in out.iterdir() if "onnx" in p.name]


@torch.library.custom_op("cnnlabtest::mystery", mutates_args=())
def _mystery(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@_mystery.register_fake
def _(x):
    return torch.empty_like(x)


class _Mystery(nn.Module):
    def forward(self, x):
        return _mystery(x)


def test_a_network_that_cannot_export_is_named_by_layer_and_op(tmp_path):
    net = nn.Sequential(nn.Conv2d(1, 4, 3), _Mystery(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    example = torch.randn(2, 1, 8, 8)
    with pytest.raises(Exception) as err:
        exporters.save_onnx(net.eval(), example, tmp_path / "x.onnx", {})
    why = failures.describe(net, example, exporters.save_onnx, err.value)
    assert why == "layer 1 (_Mystery) uses cnnlabtest.mystery, which has no translation"


@pytest.mark.parametrize(
    "args, message",
    [
        (["format=tflite"], "format='tflite' is not supported; choose one of: onnx, torchscript"),
        (["images=/nowhere"], "images=/nowhere does not exist"),
    ],
)
def test_bad_export_input_is_one_line(command, digits_run, tmp_path, args, message):
    proc = command("export", f"ckpt_path={digits_run / CKPT}", *args, "run_id=bad")
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and message in line
    assert not (tmp_path / "outputs" / "export" / "runs" / "bad").exists()

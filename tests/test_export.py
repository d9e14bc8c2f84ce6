"""`export`: ONNX, TorchScript and ExportedProgram files with a dynamic batch, cnnlab's metadata
inside and beside them, a parity check on real images, and one-line failures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.data.mnist_sample import write_pngs
from cnnlab.inference import exporters, failures
from cnnlab.training import calibration

REPO = Path(__file__).resolve().parents[1]
CKPT = "checkpoints/best.ckpt"


def _export(command, ckpt, tmp_path, fmt, *extra):
    proc = command("export", f"ckpt_path={ckpt}", f"format={fmt}", f"run_id={fmt}", *extra)
    return proc, tmp_path / "outputs" / "export" / "runs" / fmt


def _site_snippet(folder: Path) -> Path:
    page = (REPO / "docs" / "predict-export.md").read_text()  # the site's page, as users copy it
    section = page.split("## Export", 1)[1].split("\n## ", 1)[0]
    (body,) = re.findall(r"```python\n# file: classify_onnx.py\n(.*?)```", section, flags=re.S)
    path = folder / "classify_onnx.py"
    path.write_text(body)
    return path


def test_onnx_export_checks_parity_and_runs_with_onnxruntime_and_numpy_alone(
    command, digits_run, tmp_path
):
    # A calibrated checkpoint (T ≠ 1): the graph divides by T, and the snippet must not again.
    ckpt = tmp_path / "calibrated.ckpt"
    shutil.copy(digits_run / CKPT, ckpt)
    calibration.store(ckpt, 1.7, fitted_on="val")
    proc, out = _export(command, ckpt, tmp_path, "onnx")
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

    # The site's snippet, as a user runs it: no torch imported, predict's answer on awkward files.
    assert inside["temperature"] == pytest.approx(1.7)
    _snippet_equals_predict(command, ckpt, model, tmp_path)


def _snippet_equals_predict(command, ckpt: Path, model: Path, tmp_path: Path) -> None:
    import cnnlab

    files = awkward_images(tmp_path / "awkward")
    script = _site_snippet(tmp_path)
    as_user = subprocess.run([sys.executable, str(script), str(model), str(files[0])],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert as_user.returncode == 0, as_user.stderr
    check = (
        "import json, runpy, sys; import onnxruntime; "
        "m = runpy.run_path(sys.argv[1], run_name='classify'); "
        "s = onnxruntime.InferenceSession(sys.argv[2], providers=['CPUExecutionProvider']); "
        "meta = {k: json.loads(v) for k, v in s.get_modelmeta().custom_metadata_map.items()}; "
        "print(json.dumps(m['probabilities'](s, meta, sys.argv[3:]).tolist())); "
        "assert 'torch' not in sys.modules, 'the snippet imported torch'"
    )
    args = [sys.executable, "-c", check, str(script), str(model), *map(str, files)]
    snippet = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert snippet.returncode == 0, snippet.stderr
    theirs = np.array(json.loads(snippet.stdout))
    ours = cnnlab.load(ckpt).predict_files(files).numpy()
    # Measured 1.2e-7 at most (float rounding): the issue asks ≤ 1e-4.
    assert np.abs(theirs - ours).max() <= 1e-6, np.abs(theirs - ours).max(axis=1)
    assert (theirs.argmax(1) == ours.argmax(1)).all()
    name = cnnlab.load(ckpt).class_names[ours[0].argmax()]
    assert as_user.stdout.strip() == f"{files[0]} {name} {ours[0].max():.4f}"
    # predict_files is predict: every top-k probability in predictions.csv, to its 6 decimals.
    proc = command("predict", f"ckpt_path={ckpt}", f"images={files[0].parent}", "run_id=p",
                   "topk=10")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "outputs/predict/runs/p"
    assert f"labelled {len(files)} image(s)" in (run / "predict.log").read_text()  # not empty
    rows = (run / "predictions.csv").read_text().splitlines()[1:]
    by_path = {Path(r.split(",")[0]).name: r.split(",")[4:] for r in rows}
    names = cnnlab.load(ckpt).class_names
    for path, probs in zip(files, ours, strict=True):
        ranked = by_path[path.name]
        for name, value in zip(ranked[::2], ranked[1::2], strict=True):
            assert float(value) == pytest.approx(float(probs[names.index(name)]), abs=6e-7)


def awkward_images(folder: Path) -> list[Path]:
    """Real pixels (MNIST digits, scikit-learn's two photos) in the files users actually have:
    EXIF-rotated JPEG, RGBA and LA PNG, CMYK JPEG, 16-bit PNG, palette PNG with transparency,
    odd sizes (resize and crop rounding), plain grayscale and colour."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    folder.mkdir(parents=True)
    digits = write_pngs(folder.parent / "digits")
    digit = Image.open(sorted((digits / "4 - four").glob("*.png"))[0]).convert("L")
    china, flower = (Image.fromarray(a) for a in load_sample_images().images)
    out: list[Path] = []

    def save(name: str, image, **kwargs) -> None:
        out.append(folder / name)
        image.save(out[-1], **kwargs)

    save("digit.png", digit)
    save("digit_odd.jpg", digit.resize((57, 43)).convert("RGB"), quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: the viewer rotates it 90° clockwise
    save("china_exif6.jpg", china.transpose(Image.Transpose.ROTATE_90), exif=exif, quality=90)
    save("flower_cmyk.jpg", flower.convert("CMYK"), quality=90)
    alpha = Image.linear_gradient("L").resize(flower.size)
    save("flower_rgba.png", Image.merge("RGBA", (*flower.split(), alpha)))
    save("digit_la.png", Image.merge("LA", (digit, digit.point(lambda v: 255 - v))))
    wide = (np.asarray(digit.resize((61, 37)), np.uint16) * 257).astype(np.uint16)
    save("digit_16bit.png", Image.fromarray(wide))
    palette = china.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    save("china_palette.png", palette, transparency=0)
    save("china.png", china.resize((301, 199)))
    return out


def test_int8_onnx_is_calibrated_on_training_images_smaller_and_agrees(
    command, digits_run, tmp_path
):
    proc, out = _export(command, digits_run / CKPT, tmp_path, "onnx_int8", "parity_images=64",
                        "calibration_images=64")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"parity: top class as PyTorch's on (\S+)% of 64 real images \(at least "
                      r"90%\), max \|Δ logit\| = (\S+)", proc.stdout)  # fmt: skip
    assert float(found.group(1)) >= 90 and float(found.group(2)) > 0  # approximate, not exact
    model = out / "convnet.int8.onnx"
    ops = {node.op_type for node in __import__("onnx").load(str(model)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # int8 tensors between the layers
    fp32 = exporters.get("onnx").serialize(
        cnnlab_net(digits_run / CKPT), torch.zeros(2, 1, 28, 28), {}, None)  # fmt: skip
    assert model.stat().st_size < len(fp32) / 3  # int8 weights: a quarter of the float32 bytes
    assert exporters.read_metadata("onnx_int8", model)["class_names"][0] == "0 - zero"
    assert exporters.runner("onnx_int8", model)(np.zeros((3, 1, 28, 28), np.float32)).shape == (
        3, 10)  # fmt: skip
    sidecar = json.loads((out / "convnet.int8.onnx.json").read_text())
    assert sidecar["parity"]["top1_agreement"] == pytest.approx(float(found.group(1)) / 100)


def cnnlab_net(ckpt: Path) -> nn.Module:
    import cnnlab

    return cnnlab.load(ckpt).net.eval()


def test_a_lossy_format_fails_below_its_agreement_and_an_exact_one_on_any_logit():
    from omegaconf import OmegaConf

    from cnnlab.commands.export import parity

    cfg = OmegaConf.create({"tolerance": 1e-4, "min_agreement": 0.9})
    eager = np.eye(10, dtype=np.float32)  # image i's top class is i
    got = eager.copy()
    got[0] = np.roll(got[0], 1)  # one image of ten answers another class
    holds, line, _, agreement = parity(exporters.get("onnx_int8"), cfg, eager, got)
    assert (holds, agreement) == (True, 0.9) and "on 90.0% of 10 real images" in line
    got[1] = np.roll(got[1], 1)
    assert not parity(exporters.get("onnx_int8"), cfg, eager, got)[0]
    assert not parity(exporters.get("onnx"), cfg, eager, eager + 2e-4)[0]
    assert parity(exporters.get("onnx"), cfg, eager, eager + 5e-5)[0]


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
    onnx = exporters.get("onnx")

    def serialize(module, batch, meta):
        return onnx.serialize(module, batch, meta, None)

    with pytest.raises(Exception) as err:
        serialize(net.eval(), example, {})
    why = failures.describe(net, example, serialize, err.value)
    assert why == "layer 1 (_Mystery) uses cnnlabtest.mystery, which has no translation"


@pytest.mark.parametrize(
    "args, message",
    [
        (["format=tflite"], "format='tflite' is not valid; choose one of: onnx, torchscript"),
        (["images=/nowhere"], "images=/nowhere does not exist"),
    ],
)
def test_bad_export_input_is_one_line(command, digits_run, tmp_path, args, message):
    proc = command("export", f"ckpt_path={digits_run / CKPT}", *args, "run_id=bad")
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and message in line
    assert not (tmp_path / "outputs" / "export" / "runs" / "bad").exists()

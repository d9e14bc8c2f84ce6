"""Export a checkpoint for deployment:
`make export ARGS="ckpt_path=outputs/.../best.ckpt format=onnx"` (formats: choices.EXPORT_FORMATS,
one module each in `cnnlab.inference.exporters`).

The file takes normalised float images (N, C, S, S) with any batch size and returns logits
(calibrated when `eval calibrate=true` stored a temperature); class names, mean, std, sizes and
channels are inside it and in a JSON sidecar. Every export is checked: the file is loaded back and
run on a batch of real images (the run's test split, or `images=`), and the export fails if any
logit differs from PyTorch's by more than `tolerance` (an int8 file: if its top class agrees
with PyTorch's on fewer than `min_agreement` of them). Nothing is left behind when it fails.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

import cnnlab
from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.core import files
from cnnlab.core.errors import UserError
from cnnlab.data.image_set import seeded_sample
from cnnlab.inference import exporters, failures, images
from cnnlab.inference.loading import LoadedModel, load
from cnnlab.training import build

log = logging.getLogger(__name__)
for _chatty in ("onnx_ir", "onnxscript"):  # a dozen INFO lines per export about graph passes
    logging.getLogger(_chatty).setLevel(logging.WARNING)


def check(cfg: DictConfig) -> exporters.Exporter:
    exporter = exporters.get(cfg.format)  # one of choices.EXPORT_FORMATS: cli.schema checked it
    missing = [m for m in exporter.needs if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(
            f"format={cfg.format} needs {', '.join(missing)}: pip install 'cnnlab[export]' "
            f"(make install has every extra)"
        )
    return exporter


def run_data(model: LoadedModel):
    """The run's datamodule, restored and set up at most once per export (the parity check's test
    images and int8's calibration images both come from it), training augmentation off: both
    want images as evaluation sees them."""

    @functools.cache
    def data():
        stored = copy.deepcopy(model.config)
        stored["data"]["augment"] = None
        _, _, dm, _ = build.restore(stored)
        dm.setup("fit")  # every split at once
        return dm

    return data


def real_images(cfg: DictConfig, model: LoadedModel, data) -> torch.Tensor:
    """uint8 images for the parity check: `images=`, else the first of the run's test split."""
    count = int(cfg.parity_images)
    if cfg.images:
        found = images.find(cfg.images).images[:count]
        files = images.ImageFiles.for_model(found, model)
        loaded = [files[i] for i in range(len(found))]
        bad = [err for image, _, err in loaded if image is None]
        if bad:
            raise UserError(bad[0])
        return torch.stack([image for image, _, _ in loaded])
    try:
        dm = data()
    except UserError as err:
        raise UserError(f"{err} (give the parity check other images: images=DIR)") from None
    return next(iter(dm.test_dataloader()))[0][:count]


def training_batches(cfg: DictConfig, model: LoadedModel, data) -> exporters.Calibration:
    """`calibration_images` seeded training images, unaugmented and preprocessed as the file
    will see them, in batches: what an int8 format measures its activation ranges on."""

    def batches():
        train = data().train_set
        picked = seeded_sample(len(train), min(int(cfg.calibration_images), len(train)), cfg.seed)
        for start in range(0, len(picked), CALIBRATION_BATCH):
            chunk = torch.stack(
                [train[int(i)][0] for i in picked[start : start + CALIBRATION_BATCH]]
            )
            yield model.preprocess(chunk).float().numpy()

    return batches


CALIBRATION_BATCH = 32


def parity(exporter: exporters.Exporter, cfg: DictConfig, eager: np.ndarray, got: np.ndarray):
    """(holds, the line that says it, max |Δ logit|, top-1 agreement): every logit within
    `tolerance` of PyTorch's, or for a lossy format (int8) the top class PyTorch's on at least
    `min_agreement` of the images."""
    delta = float(np.abs(got - eager).max())
    agreement = float((got.argmax(1) == eager.argmax(1)).mean())
    if exporter.lossy:
        line = (f"parity: top class as PyTorch's on {agreement:.1%} of {len(got)} real images "
                f"(at least {cfg.min_agreement:.0%}), max |Δ logit| = {delta:.2e}")  # fmt: skip
        return agreement >= cfg.min_agreement, line, delta, agreement
    line = (
        f"parity: max |Δ logit| = {delta:.2e} on {len(got)} real images (limit {cfg.tolerance:g})"
    )
    return delta <= cfg.tolerance, line, delta, agreement  # NaN fails too


def metadata(model: LoadedModel, ckpt_path: str) -> dict:
    data = model.config["data"]
    return {
        "class_names": model.class_names,
        "mean": list(model.preprocessing.mean),
        "std": list(model.preprocessing.std),
        "input_size": model.preprocessing.input_size,
        "image_size": int(data["image_size"]),
        "resize": int(images.eval_resize(data) or data["image_size"]),  # before the centre crop
        "channels": model.in_channels,
        "temperature": model.temperature,
        "input": "images: float32 (N, channels, input_size, input_size): pixels / 255, "
        "then (x - mean) / std per channel",
        "output": "logits (N, classes); softmax gives the probabilities",
        "model": model_name(model.config["model"]),
        "checkpoint": str(ckpt_path),
        "cnnlab_version": cnnlab.__version__,
    }


def model_name(model_cfg: dict) -> str:
    """resnet18 for torchvision's networks, convnet for cnnlab's ConvNet."""
    net = model_cfg.get("net") or {}
    return str(net.get("name") or str(net.get("_target_", "model")).rsplit(".", 1)[-1]).lower()


def export(cfg: DictConfig) -> dict:
    exporter = check(cfg)
    out_dir = Path(cfg.out_dir or cfg.paths.output_dir)
    files.check_writable(out_dir)  # before the checkpoint and the test data are loaded
    model = load(cfg.ckpt_path)
    data = run_data(model)
    x = model.preprocess(real_images(cfg, model, data)).float()
    # The example batch is 2 images (the parity batch has more): torch.export would fix a batch of
    # 1 as a constant, and a different size at check time proves the batch dimension is dynamic.
    example = x[:2] if len(x) >= 2 else x.repeat(2, 1, 1, 1)
    deploy = exporters.Deployable(model.net, model.temperature).eval()
    meta = metadata(model, cfg.ckpt_path)
    name = meta["model"]
    final = out_dir / f"{name}{exporter.suffix}"
    calibration = training_batches(cfg, model, data) if exporter.lossy else None

    def serialize(net, batch, info):
        return exporter.serialize(net, batch, info, calibration)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation, exporter chatter
        try:
            data = serialize(deploy, example, meta)  # in memory: the model's failures only
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - the exporters raise many types
            why = failures.describe(deploy, example, serialize, err)
            raise UserError(f"{name} cannot be exported to {cfg.format}: {why}") from None
    # The temporary file keeps the format's ending: torch.export.load wants .pt2. A full disk
    # is an OSError naming the file (the command's one line), for every format.
    with files.atomic_file(final, keep_suffix=True) as tmp:
        with files.naming(final):
            tmp.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                eager = deploy(x).numpy()
            got = exporter.load(tmp)(x.numpy())
        holds, line, delta, agreement = parity(exporter, cfg, eager, got)
        print(line)
        if not holds:
            raise UserError(f"{cfg.format} export of {name} is not faithful: {line}")
    sidecar = {**meta, "format": cfg.format, "file": final.name,
               "parity": {"max_abs_logit_delta": delta, "top1_agreement": agreement,
                          "images": len(x)}}  # fmt: skip
    files.write_atomic(final.with_name(f"{final.name}.json"), json.dumps(sidecar, indent=2))
    return {**sidecar, "path": final}


@command("export")
def _main(cfg: DictConfig) -> None:
    out = export(cfg)
    path = out["path"]
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and {path.name}.json")


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

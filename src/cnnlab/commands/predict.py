"""Label new images with a trained checkpoint:
`make predict ARGS="ckpt_path=outputs/.../best.ckpt images=photos/"` (a file, a folder read
recursively, or a glob).

Images stream through a DataLoader with workers, decoded and preprocessed as the checkpoint's
eval split was (`cnnlab.load`: same network, preprocessing and calibration temperature), on the
GPU when there is one. Writes `predictions.csv` and `predictions.jsonl` (path, predicted class,
probability, top-k) into the run folder; when an image's folder is named after a class, that is
its label and the accuracy is printed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from rich.progress import Progress

from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli, say
from cnnlab.core.errors import UserError
from cnnlab.inference import images, tta
from cnnlab.inference.loading import load
from cnnlab.inference.outputs import PredictionWriter

log = logging.getLogger(__name__)


def device(choice: str) -> torch.device:
    """`device=` (one of choices.DEVICES, checked by cli.schema) → the torch device."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but this machine has no CUDA GPU; use device=auto or cpu")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def predict(cfg: DictConfig) -> PredictionWriter:
    found = images.find(cfg.images)  # tta, on_bad_image, device: checked by cli.schema
    on = device(cfg.device)
    model = load(cfg.ckpt_path, map_location=on)
    size = int(model.config["data"]["image_size"])
    dataset = (
        images.ImageFiles(found.images, model.in_channels, tta.load_size(cfg.tta, size))
        if cfg.tta == "five_crop"  # five crops of the image loaded at image_size / 0.875
        else images.ImageFiles.for_model(found.images, model)
    )
    batches = images.loader(dataset, cfg.batch_size, cfg.num_workers, on.type == "cuda")
    writer = PredictionWriter(
        Path(cfg.paths.output_dir), model.class_names, min(cfg.topk, len(model.class_names))
    )
    try:
        for path, why in found.unreachable:  # listed whatever on_bad_image says: not an image
            writer.skip(path, why)
        with Progress(transient=True) as bar:
            task = bar.add_task("predict", total=len(dataset))
            for batch, indices, bad in batches:
                for i, reason in bad:
                    if cfg.on_bad_image == "fail":
                        raise UserError(
                            f"{reason} (on_bad_image=skip lists such files and goes on)"
                        )
                    writer.skip(dataset.paths[i], reason)
                if batch is not None:
                    probs = tta.probabilities(model.logits, batch, cfg.tta, size)
                    writer.rows([dataset.paths[i] for i in indices], probs.cpu())
                bar.advance(task, len(indices) + len(bad))
        writer.finish(found.not_images)
    except BaseException:
        writer.abandon()
        raise
    return writer


@command("predict")
def _main(cfg: DictConfig) -> None:
    out = predict(cfg)
    folder = Path(cfg.paths.output_dir)
    line = f"labelled {out.count} image(s) → {folder}/predictions.csv, predictions.jsonl"
    if out.skipped:
        line += f"; skipped {len(out.skipped)} unreadable (skipped.csv)"
    say(line)
    if out.not_images:
        say(f"{len(out.not_images)} file(s) are not images and were left out (not_images.txt)")
    if out.accuracy is not None:
        say(
            f"accuracy {out.accuracy:.4f} on the {out.labelled} image(s) whose folder names "
            f"their class"
        )


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

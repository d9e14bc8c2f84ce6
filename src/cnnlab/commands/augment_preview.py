"""Write a grid of augmented training images to a PNG, without training:
`cnnlab-augment-preview data=cifar10 augment=randaugment` (or `make augment-preview`)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from PIL import Image

from cnnlab.analysis.preview import augmented_batch, picture
from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.training import build


def preview(cfg: DictConfig, path: Path, count: int = 32) -> Path:
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    images, targets = augmented_batch(dm, count=count, seed=cfg.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture(dm, images, targets)).save(path)
    return path


@command("train")
def _main(cfg: DictConfig) -> None:
    out = Path(cfg.paths.output_dir) / "augment_preview.png"
    print(f"wrote {preview(cfg, out)}")


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

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


def grid(cfg: DictConfig, count: int = 32):
    """(H, W, 3) uint8: `count` training images after the whole training pipeline, captioned."""
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    images, targets = augmented_batch(dm, count=count, seed=cfg.seed)
    return picture(dm, images, targets)


def preview(cfg: DictConfig, path: Path, count: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid(cfg, count)).save(path)
    return path


@command("train")
def _main(cfg: DictConfig) -> None:
    out = Path(cfg.paths.output_dir) / "augment_preview.png"
    print(f"wrote {preview(cfg, out)}")


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

"""Write a grid of augmented training images to a PNG, without training:
`python -m cnnlab.augment_preview data=cifar10 augment=randaugment` (or `make augment-preview`)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig
from PIL import Image

from cnnlab import build, resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.data.preview import augmented_batch, picture
from cnnlab.errors import in_job, run_cli
from cnnlab.train import CONFIG_DIR


def preview(cfg: DictConfig, path: Path, count: int = 32) -> Path:
    dm = build.datamodule(cfg.data)
    images, targets = augmented_batch(dm, count=count, seed=cfg.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture(dm, images, targets)).save(path)
    return path


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@in_job
def _main(cfg: DictConfig) -> None:
    out = Path(cfg.paths.output_dir) / "augment_preview.png"
    print(f"wrote {preview(cfg, out)}")


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

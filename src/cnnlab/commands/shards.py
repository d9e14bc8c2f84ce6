"""Convert an image folder into LitData shards for `data=shards`:
`make shards ARGS="src=/data/imagenet out=/data/imagenet_shards [max_side=500]"`.

Every image is decoded once on the way (an unreadable file stops the conversion, naming it, or is
skipped and counted with `on_bad_image=skip`); each split is written beside its final place and
moved in at the end, so nothing half-written is ever read as shards.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.core.errors import UserError

log = logging.getLogger(__name__)


def check(cfg: DictConfig) -> tuple[Path, Path, list[str]]:
    src, out = Path(str(cfg.src)).expanduser(), Path(str(cfg.out)).expanduser()
    splits = list(cfg.splits)
    if not src.is_dir():
        raise UserError(f"src={src} is not a folder; give an image folder <src>/<split>/<class>/*")
    missing = [s for s in splits if not (src / s).is_dir()]
    if not splits or missing:
        have = sorted(p.name for p in src.iterdir() if p.is_dir())
        raise UserError(f"splits={splits}: {missing or 'none given'} not in {src}; it has {have}")
    there = [s for s in splits if (out / s).exists()]
    if there and not cfg.overwrite:
        raise UserError(f"{out} already has {there}; pass overwrite=true to replace them")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"out={out}: cannot create it ({err.strerror})") from None
    return src, out, splits


def convert(cfg: DictConfig) -> dict[str, dict]:
    from cnnlab.data.shards import write_split

    src, out, splits = check(cfg)
    done: dict[str, dict] = {}
    classes = None
    for split in splits:
        done[split] = write_split(
            src / split,
            out / split,
            classes,
            max_side=cfg.max_side,
            quality=int(cfg.quality),
            chunk_mb=int(cfg.chunk_mb),
            workers=int(cfg.workers),
            on_bad_image=cfg.on_bad_image,
        )
        classes = classes or done[split]["classes"]
        log.info("%s: %d images, %.1f MB", split, done[split]["images"], done[split]["bytes"] / 1e6)
    return done


@command("shards")
def _main(cfg: DictConfig) -> None:
    done = convert(cfg)
    for split, info in done.items():
        skipped = f", skipped {info['skipped']} unreadable" if info["skipped"] else ""
        print(
            f"{split}: {info['images']} images in {len(info['classes'])} classes, "
            f"{info['bytes'] / 1e6:.1f} MB → {Path(str(cfg.out)) / split}{skipped}"
        )


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

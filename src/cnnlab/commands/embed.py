"""Frozen features of every split: `cnnlab-embed model=… data=…` (or `ckpt_path=…`).

The backbone is the network without its head; each split's features (what the head receives),
their index (row, source, label, split) and what made them are written to the run folder's
`features/<split>/` and kept under their fingerprint in `paths.feature_cache`, where the next
embed, `classifier=…` or `freeze=linear_probe` finds them (docs/features.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli, say
from cnnlab.cli.schema import validate
from cnnlab.core import checkpoint

log = logging.getLogger(__name__)

FOLDER = "features"  # in the run folder


def embed(cfg: DictConfig) -> dict[str, Path]:
    """{split: its folder in the run folder}."""
    validate(cfg)
    import lightning as L

    from cnnlab.core.files import link_or_copy
    from cnnlab.features.store import FEATURES, INDEX, META
    from cnnlab.models.build import head_name
    from cnnlab.training import build, cached_probe

    L.seed_everything(cfg.seed, verbose=False)
    if cfg.ckpt_path:
        path = Path(str(cfg.ckpt_path))
        ckpt = checkpoint.load(path)
        stored = checkpoint.run_config(ckpt, path)
        run_cfg, _, dm, net = build.restore(stored)
        checkpoint.load_state(net, checkpoint.network_state(ckpt, path), path)
        model_cfg = run_cfg.model
    else:
        _, dm, net = build.data_and_network(cfg)
        model_cfg = cfg.model
    dm.setup("fit")
    emb = cached_probe.embedder(cfg, dm, net, head_name(model_cfg, net), str(cfg.dtype))
    emb.describe["model"] = str(model_cfg.get("name") or model_cfg.net._target_)
    kept = cached_probe.keep(emb, dm)
    out = Path(cfg.paths.output_dir) / FOLDER
    written = {}
    for split, store in kept.items():
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for name in (FEATURES, INDEX, META):
            link_or_copy(store.folder / name, folder / name)
        meta = store.meta()
        say(f"{split}: {meta['images']} × {meta['dim']} {meta['dtype']} features → {folder}")
        written[split] = folder
    return written


@command("embed")
def _main(cfg: DictConfig) -> None:
    embed(cfg)
    say(
        'next: make train ARGS="classifier=knn" (or logistic, linear) with the same model and '
        "data reads them back"
    )


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

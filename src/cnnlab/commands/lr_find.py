"""The learning-rate range test on any run: `make lr-find ARGS="model=resnet_cifar"`.

Takes the same overrides as `train`, runs Lightning's tuner for a hundred steps, writes
`lr_find.png` (loss against learning rate) into its run folder and TensorBoard, and prints the
suggested `optimizer.lr`. `make train ARGS="optimizer.lr=auto"` runs the same search first and
trains with its suggestion.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.core.errors import UserError

log = logging.getLogger(__name__)


@command("lr_find")
def _main(cfg: DictConfig) -> None:
    from cnnlab.training import lr_search

    if cfg.get("ckpt_path"):  # the test starts from the recipe's initial weights
        raise UserError(
            f"lr-find does not resume ckpt_path={cfg.ckpt_path}: the range test starts from the "
            f"recipe's initial weights; to start from a checkpoint's, give model.weights=<file>"
        )
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    tuned = cfg.optimizer.lr
    out = Path(cfg.paths.output_dir)
    suggestion = lr_search.search(cfg, out)
    print(
        f"suggested optimizer.lr={suggestion:.3g} (the recipe's: {tuned}); plot: {out}/lr_find.png"
    )


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

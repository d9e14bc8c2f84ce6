"""The lecture's interactive demos: `cnnlab-playground` (or `make playground`) serves them on
http://127.0.0.1:7861 until Ctrl-C. Image kernels on a real photo, convolution arithmetic and
receptive fields; with `ckpt_path=…/best.ckpt`, the inside of a network you trained. Needs the
demo extra (Gradio); offline."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.commands.demo import check_address, launch, test_examples
from cnnlab.core.choices import PLAYGROUND_TABS
from cnnlab.core.errors import UserError
from cnnlab.core.extras import need

log = logging.getLogger(__name__)


def _test_images(model, count: int, folder: Path):
    """Up to `count` test-split images of the checkpoint's run, as the model reads them."""
    paths = test_examples(model.config, count, folder)
    return model.read(paths) if paths else None


def serve(cfg: DictConfig) -> None:
    started = time.perf_counter()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls
    host, port = str(cfg.host), int(cfg.port)
    check_address(host, port)
    need("gradio")
    from gradio.utils import get_upload_folder

    from cnnlab.demo import page, playground, playground_page

    folder = Path(cfg.paths.output_dir) / "playground"
    folder.mkdir(parents=True, exist_ok=True)
    classifier, images = None, None
    if cfg.get("ckpt_path"):
        from cnnlab.inference.loading import load

        ckpt = Path(cfg.ckpt_path)
        if not ckpt.is_file():
            raise UserError(f"ckpt_path={ckpt}: no such checkpoint file")
        model = load(ckpt)
        classifier = page.Classifier(model, "")
        images = _test_images(model, int(cfg.test_images), folder / "test")
    play = playground.Playground(cfg.paths.data_dir, folder, get_upload_folder(), classifier,
                                 images)  # fmt: skip
    tab = str(cfg.tab)
    if tab == PLAYGROUND_TABS[2] and classifier is None:
        raise UserError("tab=inside needs a checkpoint: add ckpt_path=…/best.ckpt")
    app = playground_page.build(play, tab)
    log.info("the playground is ready in %.1f s", time.perf_counter() - started)
    launch(app, host, port, folder)


@command("playground")
def _main(cfg: DictConfig) -> None:
    serve(cfg)


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

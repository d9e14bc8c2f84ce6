"""A demo page for a trained checkpoint: `cnnlab-demo ckpt_path=.../best.ckpt` (or
`make demo ARGS="ckpt_path=…"`) serves it on http://127.0.0.1:7860 until Ctrl-C.

Drop, paste or pick an image (up to `examples` test-split images are offered), see the top-5
classes with calibrated probabilities and the Grad-CAM overlay, choose the class and the CAM
method, and read the model's card (`cnnlab.demo.page`). Needs the demo extra (Gradio).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.core import checkpoint
from cnnlab.core.errors import UserError, message

log = logging.getLogger(__name__)

INSTALL = "make demo needs Gradio: pip install 'cnnlab[demo]' (make install has it)"


def test_examples(stored: dict, count: int, folder: Path) -> list[str]:
    """`count` images of the run's test split, one per class in turn, as PNG files the page
    offers (none when the run's data is not on this machine)."""
    if count <= 0:
        return []
    from PIL import Image

    from cnnlab.training import build

    try:
        _, _, datamodule, _ = build.restore(stored)
        datamodule.setup("test")
    except Exception as err:  # noqa: BLE001 - the data is not here: no examples, still a page
        log.warning("no test-split examples on the page (%s)", message(err))
        return []
    test = datamodule.test_set
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in _one_per_class(test.targets, count):
        image, target = test[i]
        pixels = image.permute(1, 2, 0).numpy()
        name = datamodule.class_names[int(target)].replace("/", "_")
        path = folder / f"{i:02d}_{name}.png"
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
        paths.append(str(path))
    return paths


def _one_per_class(targets, count: int) -> list[int]:
    """Indices of the first image of each class in turn (a split sorted by class would
    otherwise offer only its first class), `count` of them at most."""
    firsts: dict[int, list[int]] = {}
    for i, t in enumerate(targets.tolist()):
        firsts.setdefault(int(t), []).append(i)
    picked, rank = [], 0
    while len(picked) < count and any(rank < len(v) for v in firsts.values()):
        picked += [v[rank] for _, v in sorted(firsts.items()) if rank < len(v)]
        rank += 1
    return picked[:count]


def serve(cfg: DictConfig) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError(INSTALL) from None
    from cnnlab.demo import page
    from cnnlab.inference.loading import load

    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise UserError(f"ckpt_path={ckpt}: no such checkpoint file")
    model = load(ckpt)
    run = ckpt.resolve().parent.parent
    metrics = checkpoint.read_metrics(run) or {}
    folder = Path(cfg.paths.output_dir) / "examples"
    examples = test_examples(model.config, int(cfg.examples), folder)
    card = page.model_card(model, metrics, ckpt)
    title = f"cnnlab demo: {run.name}"
    app = page.build(page.Classifier(model, card), examples, title)
    app.launch(server_name=cfg.host, server_port=int(cfg.port), share=bool(cfg.share),
               allowed_paths=[str(folder)], show_error=True, quiet=False)  # fmt: skip


@command("demo")
def _main(cfg: DictConfig) -> None:
    serve(cfg)


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

"""A demo page for a trained checkpoint: `cnnlab-demo ckpt_path=.../best.ckpt` (or
`make demo ARGS="ckpt_path=…"`) serves it on http://127.0.0.1:7860 until Ctrl-C.

Drop, paste or pick an image (up to `examples` test-split images are offered), see the top-5
classes with calibrated probabilities and the Grad-CAM overlay, choose the class and the CAM
method, and read the model's card (`cnnlab.demo.page`). Needs the demo extra (Gradio).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.core import checkpoint
from cnnlab.core.errors import UserError, message
from cnnlab.core.extras import need

log = logging.getLogger(__name__)


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


def right_first(model, examples: list[str]) -> list[str]:
    """The examples with one the model classifies right first: the page opens on it, so a new
    visitor sees the model at work, not its mistake (the others keep their order)."""
    if not examples:
        return examples
    predicted = model.predict_files(examples).argmax(1).tolist()
    truth = [Path(p).stem.split("_", 1)[1] for p in examples]  # <index>_<class name>.png
    names = [model.class_names[i].replace("/", "_") for i in predicted]
    right = next((i for i, (n, t) in enumerate(zip(names, truth, strict=True)) if n == t), 0)
    return [examples[right], *examples[:right], *examples[right + 1 :]]


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


LOOPBACK = ("127.0.0.1", "localhost", "::1")
VALID_HOSTS = "use 127.0.0.1 (this machine only) or 0.0.0.0 (every network this machine is on)"


def check_address(host: str, port: int) -> None:
    """One line for a host this machine cannot listen on or a port in use, before anything is
    loaded or written (Gradio would answer with a long traceback)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError, OverflowError) as err:
        raise UserError(
            f"host={host!r} is not an address to serve on ({err}); {VALID_HOSTS}"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(address)
        except OSError as err:
            busy = err.errno == errno.EADDRINUSE
            raise UserError(
                f"port={port} on {host} is in use by another program; choose a free one, e.g. "
                f"port={port + 1}"
                if busy
                else f"cannot serve on host={host} port={port} ({err.strerror}); {VALID_HOSTS}"
            ) from None


def serve(cfg: DictConfig) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls
    host, port = str(cfg.host), int(cfg.port)
    check_address(host, port)
    need("gradio")
    from cnnlab.demo import page
    from cnnlab.inference.loading import load

    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise UserError(f"ckpt_path={ckpt}: no such checkpoint file")
    model = load(ckpt)
    run = ckpt.resolve().parent.parent
    metrics = checkpoint.read_metrics(run) or {}
    folder = Path(cfg.paths.output_dir) / "examples"
    examples = right_first(model, test_examples(model.config, int(cfg.examples), folder))
    card = page.model_card(model, metrics, ckpt)
    title = f"cnnlab demo: {run.name}"
    app = page.build(page.Classifier(model, card), examples, title)
    launch(app, host, port, folder, share=bool(cfg.share))


def launch(app, host: str, port: int, folder: Path, share: bool = False) -> None:
    """Serve a Gradio `app` until Ctrl-C, saying who can reach it; the only files it may hand
    out besides its uploads are those under `folder`."""
    if host in LOOPBACK:
        log.info("the page is served on this machine only (host=%s); host=0.0.0.0 opens it "
                 "to the network", host)  # fmt: skip
    else:
        log.warning("host=%s: the page is reachable from the network, by anyone who can reach "
                    "this machine (it asks for no password)", host)  # fmt: skip
    try:
        app.launch(server_name=host, server_port=port, share=share,
                   allowed_paths=[str(folder)], show_error=True, quiet=False)  # fmt: skip
    except OSError as err:  # taken between the check and the start
        raise UserError(f"cannot serve on host={host} port={port}: {err}") from None


@command("demo")
def _main(cfg: DictConfig) -> None:
    serve(cfg)


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

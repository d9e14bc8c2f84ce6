"""The demo page (`make demo`, the demo extra): drop, paste or pick an image and see the top-5
classes with calibrated probabilities, the Grad-CAM overlay of the predicted class (or a chosen
one, by a chosen CAM method), and the model's card.

Everything goes through `cnnlab.load`: the file is read exactly as `predict` reads it (EXIF turn,
transparency on white, the run's eval crop), the probabilities are `LoadedModel.predict`'s
(calibrated when `eval calibrate=true` stored a temperature), and the overlay is `explain`'s.
An unreadable file answers in the page (Gradio's error box), not with a traceback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cnnlab.analysis.cam import METHODS, NoFeatureMaps, cam_maps, overlay, resolve_layer
from cnnlab.core.errors import UserError
from cnnlab.core.tables import markdown_table
from cnnlab.inference.loading import LoadedModel

PREDICTED = "the predicted class"
TOP = 5  # classes shown with their probabilities
SHOWN = 320  # pixels per side of the overlay on the page (upscaled from the input size)


class Classifier:
    """One loaded model and what the page asks of it."""

    def __init__(self, model: LoadedModel, card: str):
        self.model, self.card = model, card
        self.layer: str | None = None

    def classify(self, images, target: str = PREDICTED, method: str = "gradcam"):
        """uint8 (1, C, S, S) images, as `LoadedModel.read` reads a file (exactly as predict)
        → (top-k {class: probability}, overlay RGB uint8, one line on what the CAM shows)."""
        probs = self.model.predict(images)[0]
        names = self.model.class_names
        top = probs.topk(min(TOP, len(names)))
        scores = {names[i]: float(p) for p, i in zip(top.values, top.indices, strict=True)}
        predicted = int(probs.argmax())
        if target not in (None, "", PREDICTED, *names):
            raise UserError(f"class {target!r} is not one of this model's: {', '.join(names)}")
        cls = predicted if target in (None, "", PREDICTED) else names.index(target)
        x = self.model.preprocess(images.to(self.model.device))
        try:
            self.layer = self.layer or resolve_layer(
                self.model.net, self.model.config["model"].get("cam_layer"), x[:1]
            )
        except NoFeatureMaps as err:
            return scores, _plain(images), f"No Grad-CAM: {err}"
        cam = cam_maps(self.model.net, self.layer, x, [cls], method)[0]
        unit = self.model.preprocessing.to_unit(images.cpu()).permute(0, 2, 3, 1).numpy()[0]
        shown = Image.fromarray(overlay(unit, cam)).resize((SHOWN, SHOWN), Image.BILINEAR)
        line = (f"{method} for **{names[cls]}** (p = {float(probs[cls]):.3f}); predicted "
                f"**{names[predicted]}** (p = {float(probs[predicted]):.3f})")  # fmt: skip
        return scores, np.asarray(shown), line


def _plain(images) -> np.ndarray:
    x = images[0].permute(1, 2, 0).cpu().numpy()
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def model_card(model: LoadedModel, metrics: dict[str, Any], ckpt: Path) -> str:
    """Architecture, data, test accuracy and calibration, from the checkpoint and its run."""
    cfg = model.config
    arch = cfg["model"].get("name") or cfg["model"]["net"]["_target_"].rpartition(".")[2]
    params = sum(p.numel() for p in model.net.parameters())
    prep = model.preprocessing
    shown = ", ".join(model.class_names[:8]) + (", …" if len(model.class_names) > 8 else "")
    rows = [
        ("architecture", f"{arch} ({params:,} parameters)"),
        ("data", f"{cfg['data'].get('name')}: {len(model.class_names)} classes ({shown})"),
        ("input", f"{model.in_channels} × {prep.input_size} × {prep.input_size}, mean "
                  f"{[round(m, 3) for m in prep.mean]}, std {[round(s, 3) for s in prep.std]}"),
        ("test accuracy", _metric(metrics, "test/acc")),
        ("calibration", f"temperature {model.temperature:.3f}" + (
            "" if model.temperature != 1.0 else " (not calibrated: make eval ARGS=\"… "
            "calibrate=true\" fits one)")),
        ("checkpoint", str(ckpt)),
    ]  # fmt: skip
    return markdown_table(["", "this model"], rows)


def _metric(metrics: dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    return f"{value:.4f}" if isinstance(value, int | float) else "not measured (no test after fit)"


def uploaded(upload: Any, folder: str | Path) -> tuple[Path, str]:
    """(the file, the name the user knows it by) of an upload this page may read: a regular file
    inside Gradio's upload folder, symbolic links resolved. A server path sent instead of an
    upload is refused without being named (Gradio refuses it too; this holds if it did not)."""
    path = upload.get("path") if isinstance(upload, dict) else upload
    if not path:
        raise UserError("no image: drop, paste or pick one")
    name = (upload.get("orig_name") if isinstance(upload, dict) else None) or Path(path).name
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    if not real.is_relative_to(root) or not real.is_file():
        raise UserError("the page reads only images uploaded to it: drop, paste or pick one")
    return real, Path(name).name


def forget(path: Path, folder: str | Path) -> None:
    """Delete a refused upload from Gradio's cache, so that no URL serves it afterwards."""
    path.unlink(missing_ok=True)
    if path.parent != Path(os.path.realpath(folder)):
        with contextlib.suppress(OSError):  # the per-upload folder, when now empty
            path.parent.rmdir()


def read_upload(upload: Any, folder: str | Path, read: Callable[[Path], Any]) -> Any:
    """`read(path)` of an upload this page may read (`uploaded`); a file it cannot read is
    deleted (`forget`) and its one line names the file as the user knows it, not the server
    path."""
    path, name = uploaded(upload, folder)
    try:
        return read(path)
    except UserError as err:
        forget(path, folder)
        raise UserError(str(err).replace(str(path), name)) from None


def build(classifier: Classifier, examples: list[str], title: str):
    import gradio as gr
    from gradio.utils import get_upload_folder

    names = classifier.model.class_names
    cache = get_upload_folder()

    # preprocess=False: the handlers get the uploaded file as it came, so a file Gradio could
    # not open reaches cnnlab's reader, which names what is wrong in one line. `uploaded` then
    # admits only files in Gradio's upload folder, and no message names a server path.
    def answer(upload, target, method):
        try:  # an unreadable file: one line in the page's error box
            images = read_upload(upload, cache, lambda path: classifier.model.read([path]))
        except UserError as err:
            raise gr.Error(str(err)) from None
        try:
            return classifier.classify(images, target, method)
        except UserError as err:  # a class the model does not have (through the API)
            raise gr.Error(str(err)) from None

    def changed(upload, target, method):  # a cleared image clears the answer, quietly
        return answer(upload, target, method) if upload else (None, None, "")

    with gr.Blocks(title=title) as page:
        gr.Markdown(f"# {title}\nDrop, paste or pick an image: the top {TOP} classes and where "
                    "the network looked (Grad-CAM).")  # fmt: skip
        with gr.Row():
            with gr.Column():
                image = gr.Image(value=examples[0] if examples else None, type="filepath",
                                 label="image", sources=["upload", "clipboard"])  # fmt: skip
                target = gr.Dropdown([PREDICTED, *names], value=PREDICTED, label="Grad-CAM for")
                method = gr.Dropdown(list(METHODS), value="gradcam", label="CAM method")
                run = gr.Button("Classify", variant="primary")
                if examples:
                    gr.Examples(examples, inputs=image, label="from the test split")
            with gr.Column():
                calibrated = classifier.model.temperature != 1.0
                label = gr.Label(num_top_classes=TOP, label="top classes" + (
                    " (calibrated)" if calibrated else " (not calibrated)"))  # fmt: skip
                cam = gr.Image(label="Grad-CAM", type="numpy", format="png")
                line = gr.Markdown()
        gr.Markdown("## Model card\n" + classifier.card)
        inputs, outputs = [image, target, method], [label, cam, line]
        run.click(answer, inputs, outputs, api_name="classify", preprocess=False)
        image.change(changed, inputs, outputs, api_name=False, preprocess=False)
        if examples:  # the page opens on a worked example: the first test image, classified
            page.load(changed, inputs, outputs, api_name=False, preprocess=False)
    return page

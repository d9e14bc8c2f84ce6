"""`make demo` as a real server: started as a process, asked through Gradio's Python client, its
answer checked against `predict`'s for the same file; a bad file answers in the page."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("gradio")

CKPT = "checkpoints/best.ckpt"
PREDICTED = "the predicted class"


def test_the_page_answers_as_predict_does_and_a_bad_file_in_one_line(
    demo_server, command, digits_run, tmp_path
):
    url, root = demo_server
    digit = tmp_path / "seven.png"
    Image.new("L", (28, 28), 0).save(digit)
    client = gradio_client.Client(url, verbose=False)
    image = gradio_client.handle_file(str(digit))
    label, overlay, line = client.predict(image, PREDICTED, "gradcam", api_name="/classify")
    top = label["confidences"][0]
    assert Path(overlay).is_file() and Image.open(overlay).size == (320, 320)
    assert f"predicted **{top['label']}**" in line

    predicted = command("predict", f"ckpt_path={digits_run / CKPT}", f"images={digit}",
                        "run_id=p")  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    table = next((tmp_path / "outputs" / "predict").rglob("predictions.csv"))
    with open(table) as fh:
        (row,) = csv.DictReader(fh)
    assert row["pred"] == top["label"]
    assert float(row["prob"]) == pytest.approx(top["confidence"], abs=1e-5)

    other = next(c["label"] for c in label["confidences"][1:])
    _, _, line = client.predict(image, other, "gradcam++", api_name="/classify")
    assert line.startswith(f"gradcam++ for **{other}**")

    with pytest.raises(Exception, match="is not one of this model's"):
        client.predict(image, "no such class", "gradcam", api_name="/classify")

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(Exception, match="cannot read|unreadable|cannot identify"):
        client.predict(gradio_client.handle_file(str(broken)), PREDICTED, "gradcam",
                       api_name="/classify")  # fmt: skip
    examples = sorted((root / "outputs" / "demo").rglob("examples/*.png"))
    assert len(examples) == 2  # two test-split digits offered on the page


def test_the_page_says_what_it_shows(demo_server, digits_run):
    """An uncalibrated model's probabilities are labelled so; the card opens with a header, not
    an empty row; the page opens on an example the model gets right."""
    import httpx

    import cnnlab

    url, root = demo_server
    config = httpx.get(f"{url}config", timeout=60).json()
    labels = [c["props"].get("label") for c in config["components"] if c.get("type") == "label"]
    assert labels == ["top classes (not calibrated)"]
    texts = [
        str(c["props"].get("value")) for c in config["components"] if c.get("type") == "markdown"
    ]
    cards = [t for t in texts if "Model card" in t]
    assert cards[0].split("## Model card\n", 1)[1].startswith("|  | this model |")
    image = next(c for c in config["components"] if c.get("type") == "image")
    opened = image["props"]["value"]["path"]
    model = cnnlab.load(digits_run / CKPT)
    predicted = model.class_names[int(model.predict_files([opened]).argmax())]
    assert Path(opened).stem.split("_", 1)[1] == predicted.replace("/", "_")

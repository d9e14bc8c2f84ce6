"""`make demo` as a real server: started as a process, asked through Gradio's Python client, its
answer checked against `predict`'s for the same file; a bad file answers in the page."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("gradio")

CKPT = "checkpoints/best.ckpt"
PREDICTED = "the predicted class"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(digits_run, tmp_path, data_dir):
    port = _free_port()
    env = {**os.environ, "CNNLAB_ROOT": str(tmp_path), "CNNLAB_DATA": str(data_dir),
           "GRADIO_ANALYTICS_ENABLED": "False"}  # fmt: skip
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cnnlab.commands.demo",
            f"ckpt_path={digits_run / CKPT}",
            f"port={port}",
            "examples=2",
            "run_id=demo",
        ],  # fmt: skip
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in proc.stdout:  # blocks until the server says where it listens, or exits
        seen.append(line)
        if f"127.0.0.1:{port}" in line:
            break
    else:
        pytest.fail("the demo ended before serving:\n" + "".join(seen[-30:]))
    yield f"http://127.0.0.1:{port}/", tmp_path
    proc.terminate()
    proc.wait(timeout=60)


def test_the_page_answers_as_predict_does_and_a_bad_file_in_one_line(
    server, command, digits_run, tmp_path
):
    url, root = server
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

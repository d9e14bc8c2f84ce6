"""`make playground` as a real server: started as a process, driven through Gradio's Python
client. Each number it shows is checked against torch: the kernel's feature map against
`F.conv2d`, the output size against real layers, the parameters against `numel`, a checkpoint's
filters against its weights; each bad input answers with one message."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import serve

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("gradio")

CHINA = "China (scikit-learn)"
SOBEL_X = "-1 0 1\n-2 0 2\n-1 0 1"


@pytest.fixture(scope="module")
def client(tmp_path_factory, data_dir, digits_run):
    root = tmp_path_factory.mktemp("playground")
    ckpt = digits_run / "checkpoints" / "best.ckpt"
    with serve("playground", [f"ckpt_path={ckpt}", "test_images=40", "run_id=play"], root,
               data_dir) as (url, printed):  # fmt: skip
        assert re.search(r"the playground is ready in \d+\.\d s", "".join(printed))
        yield gradio_client.Client(url, verbose=False)


def test_a_sobel_kernel_on_a_real_photo_is_conv2d_per_channel_and_summed(client):
    from sklearn.datasets import load_sample_images

    *_, cell, numbers = client.predict(CHINA, None, SOBEL_X, 200, 300, 0.5, api_name="/kernel")
    got = np.load(numbers)
    photo = torch.tensor(load_sample_images().images[0]).permute(2, 0, 1).double() / 255
    k = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)
    per_channel = torch.cat([F.conv2d(photo[c][None, None], k[None, None], padding=1)[0]
                             for c in range(3)])  # fmt: skip
    assert np.abs(got["per_channel"] - per_channel.numpy()).max() < 1e-6
    assert np.abs(got["summed"] - per_channel.sum(0).numpy()).max() < 1e-6
    *_, corner, _ = client.predict(CHINA, None, SOBEL_X, 0, 0, 0, api_name="/kernel")
    assert "wᵀx = -1·0.000 + 0·0.000 + 1·0.000 + -2·0.000 + 0·" in corner  # padding: x = 0
    window = photo[:, 199:202, 299:302]
    z = float((window * k).sum()) + 0.5
    assert f"= **{z:.4f}**" in cell and f"relu → **{max(z, 0):.4f}**" in cell


@pytest.mark.parametrize("text, says", [
    ("1 0 x\n0 1 0\n0 0 1", "kernel cell (1, 3) is 'x', not a number"),
    ("nan 0 0\n0 1 0\n0 0 1", "kernel cell (1, 1) is 'nan'; valid: a finite number"),
    ("\n".join([" ".join(["1"] * 100)] * 100), "a 100×100 kernel; valid: 3×3 or 5×5"),
    ("1 2\n3 4", "a 2×2 kernel; valid: 3×3 or 5×5"),
])  # fmt: skip
def test_a_bad_kernel_is_one_message(client, text, says):
    with pytest.raises(Exception, match=says.replace("(", r"\(").replace(")", r"\)")):
        client.predict(CHINA, None, text, 0, 0, 0, api_name="/kernel")


def test_an_upload_is_scaled_and_a_broken_one_or_a_cell_off_the_map_is_one_message(
    client, tmp_path
):
    from PIL import Image

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(Exception, match="cannot read image broken.png"):
        client.predict(CHINA, gradio_client.handle_file(str(broken)), SOBEL_X, 0, 0, 0,
                       api_name="/kernel")  # fmt: skip
    big = tmp_path / "big.png"
    Image.new("RGB", (1000, 800), (200, 10, 10)).save(big)
    *_, numbers = client.predict(CHINA, gradio_client.handle_file(str(big)), SOBEL_X, 0, 0, 0,
                                 api_name="/kernel")  # fmt: skip
    assert np.load(numbers)["summed"].shape == (512, 640)  # at most 640 px on the longer side
    with pytest.raises(Exception, match=r"cell \(900, 0\) is outside the 427×640 feature map"):
        client.predict(CHINA, None, SOBEL_X, 900, 0, 0, api_name="/kernel")


def _real(w: int, k: int, p: int, s: int, d: int, layer) -> int | None:
    try:
        return layer(k, s, p, d)(torch.zeros(1, 1, w, w)).shape[-1]
    except RuntimeError:  # torch refuses the combination
        return None


def _conv(k, s, p, d):
    return nn.Conv2d(1, 1, k, s, p, d)


def test_the_output_size_is_a_real_layers_and_impossible_ones_say_why(client, tmp_path):
    """Every combination through the arithmetic tab's own method (in this process), then a few
    through the page's endpoint, which answers each the same."""
    from cnnlab.core.errors import UserError
    from cnnlab.demo.playground import Playground

    play = Playground(tmp_path, tmp_path, tmp_path)
    sizes = (1, 3, 5, 8, 11)
    combos = list(itertools.product(sizes, (1, 2, 3, 5), (0, 1, 2), (1, 2, 3), (1, 2, 3)))
    answers = {}
    for w, k, p, s, d in combos:
        real = _real(w, k, p, s, d, _conv)
        try:
            text, frames, _, numbers = answers[w, k, p, s, d] = play.arithmetic(
                w, k, p, s, d, 2, 3, False
            )
        except UserError as err:
            assert real is None and "does not fit" in str(err), (w, k, p, s, d, err)
            answers[w, k, p, s, d] = err
            continue
        assert (numbers["output"], frames) == (real, None), (w, k, p, s, d)
        assert f"**{real}**" in text
        conv, dense = nn.Conv2d(2, 3, k), nn.Linear(w * w * 2, real * real * 3)
        assert numbers["conv_params"] == sum(t.numel() for t in conv.parameters())
        assert numbers["dense_params"] == sum(t.numel() for t in dense.parameters())
        pooled = _real(w, 2, 0, 2, 1, lambda k, s, p, d: nn.MaxPool2d(k, s, p, d))
        assert numbers["pool_output"] == pooled
    assert len(answers) == len(combos) >= 500
    impossible = [c for c, a in answers.items() if isinstance(a, UserError)]
    for c in [*combos[:: len(combos) // 8], *impossible[:2]]:
        if c in impossible:
            with pytest.raises(Exception, match=re.escape(str(answers[c]))):
                client.predict(*c, 2, 3, False, api_name="/arithmetic")
        else:
            assert tuple(client.predict(*c, 2, 3, False, api_name="/arithmetic")) == answers[c], c


def test_alexnets_conv1_preset_numbers_are_the_lectures(client):
    text, frames, _, numbers = client.predict(227, 11, 0, 4, 1, 3, 96, True,
                                              api_name="/arithmetic")  # fmt: skip
    assert numbers["output"] == 55 and numbers["conv_params"] == 34_944
    assert f"{numbers['dense_params']:.1e}" == "4.5e+10" and frames is None
    text, frames, pools, numbers = client.predict(5, 3, 1, 2, 1, 1, 1, True,
                                                  api_name="/arithmetic")  # fmt: skip
    from PIL import Image

    with Image.open(frames) as gif:
        assert gif.n_frames == numbers["output"] ** 2 == 9
    assert "2×2 max pooling" in pools and "2×2 average pooling" in pools
    with pytest.raises(Exception, match=r"S=0; valid: a whole number ≥ 1"):
        client.predict(5, 3, 1, 0, 1, 1, 1, True, api_name="/arithmetic")
    with pytest.raises(Exception, match=r"W='x'; valid: a whole number"):
        client.predict("x", 3, 1, 1, 1, 1, 1, True, api_name="/arithmetic")
    with pytest.raises(Exception, match=r"P=2.5; valid: a whole number"):
        client.predict(5, 3, 2.5, 1, 1, 1, 1, True, api_name="/arithmetic")


def test_the_receptive_field_table_is_the_librarys(client):
    table, rows = client.predict("the lecture's ConvNet (28×28 digits)", api_name="/receptive")
    assert [(r["layer"], r["field"], r["jump"]) for r in rows] == [
        ("features.0", 5, 1),
        ("features.2", 6, 2),
        ("features.3", 10, 2),
        ("features.5", 12, 4),
    ]
    assert "| features.5 | MaxPool2d | 64×7×7 | 0 | 12×12 | 4 |" in table


def test_a_checkpoints_filters_are_its_first_convolutions_weights(client, digits_run):
    from cnnlab import load

    picture, weights = client.predict(api_name="/filters")
    model = load(digits_run / "checkpoints" / "best.ckpt")
    first = next(m for m in model.net.modules() if isinstance(m, nn.Conv2d))
    assert np.array_equal(np.load(weights), first.weight.detach().numpy())
    crops = client.predict("features.5", 3, api_name="/top")
    from PIL import Image

    with Image.open(crops) as shown:
        assert shown.size[0] > 100
    with pytest.raises(Exception, match=r"channel=999; valid: 0–63 for features.5"):
        client.predict("features.5", 999, api_name="/top")


def test_an_images_stages_and_grad_cam_and_a_broken_one(client, tmp_path):
    from PIL import Image, ImageDraw

    digit = tmp_path / "one.png"
    canvas = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(canvas).line([(14, 4), (14, 24)], fill=255, width=3)
    canvas.save(digit)
    maps, cam = client.predict(gradio_client.handle_file(str(digit)), api_name="/stages")
    with Image.open(maps) as grid, Image.open(cam) as overlay:
        assert grid.size[0] > 8 * 72 and overlay.size == (320, 320)  # 3 stages × 8 maps
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(Exception, match="cannot read image broken.png"):
        client.predict(gradio_client.handle_file(str(broken)), api_name="/stages")


def test_the_run_folder_keeps_only_the_newest_answers(tmp_path):
    from cnnlab.demo.playground import KEEP, Playground

    play = Playground(tmp_path, tmp_path, tmp_path)
    written = [play._file(f"{i}.npz", b"x") for i in range(KEEP + 8)]
    kept = sorted(str(p) for p in tmp_path.glob("*_*.npz"))
    assert len(kept) == KEEP and written[-1] in kept and written[0] not in kept

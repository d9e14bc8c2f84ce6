"""A checkpoint is data and the demo page is a page: what a shared file or a page's visitor can
make cnnlab do. Each door is tried as an attacker would, and a marker file shows whether anything
ran (malicious pickles: test_reliability.py)."""

from __future__ import annotations

import math
import re
import shutil
import socket
from pathlib import Path

import httpx
import pytest
from PIL import Image

import cnnlab
from cnnlab.core.errors import UserError
from cnnlab.core.targets import checked
from tests.checkpoint_edits import CKPT, edited, inject, nan_weight, setting
from tests.conftest import free_port

PREDICTED = "the predicted class"


UNSAFE = "is unsafe: {}._target_='os.system' is not one of cnnlab's builders"


@pytest.mark.parametrize(
    "where",
    ["model.net._target_", "model.net.dropout", "data.source._target_", "data.augment.batch",
     "module._target_"],
)  # fmt: skip
def test_a_target_injected_anywhere_is_refused_before_it_runs(where, digits_run, tmp_path):
    marker = tmp_path / "ran"
    evil = edited(digits_run, tmp_path / "evil.ckpt", inject(where, marker))
    key = where.removesuffix("._target_")
    with pytest.raises(UserError, match=re.escape(UNSAFE.format(key))):
        cnnlab.load(evil)
    assert not marker.exists()


@pytest.mark.parametrize(
    "entry, args",
    [
        ("predict", ["images={images}"]),
        ("explain", ["images={images}"]),
        ("export", []),
        ("eval", []),
        ("demo", ["port={port}"]),
        ("lr_find", []),
        ("train", ["debug=test"]),
    ],
)
def test_every_command_refuses_an_injected_checkpoint_in_one_line(
    entry, args, command, digits_run, tmp_path
):
    marker = tmp_path / "ran"
    evil = edited(digits_run, tmp_path / "evil.ckpt", inject("model.net.dropout", marker))
    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (28, 28), 0).save(images / "a.png")
    proc = command(
        entry, f"ckpt_path={evil}", *(a.format(images=images, port=free_port()) for a in args)
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    if entry == "lr_find":  # the range test never reads a checkpoint it would not use
        assert "lr-find does not resume ckpt_path=" in errors[0]
    else:
        assert f"{evil} " + UNSAFE.format("model.net.dropout") in errors[0]
    assert not marker.exists()
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.ckpt"))


def test_a_projects_own_builders_only_with_its_config_dir(tmp_path):
    project = tmp_path / "project"
    (project / "model").mkdir(parents=True)
    (project / "model" / "mynet.yaml").write_text("net:\n  _target_: mypkg.nets.MyNet\n")
    stored = {"model": {"net": {"_target_": "mypkg.nets.MyNet", "width": 4}}}
    with pytest.raises(UserError, match=r"_target_='mypkg.nets.MyNet' is not one of cnnlab's"):
        checked(stored, "run.ckpt")
    assert checked(stored, "run.ckpt", [project]) == stored
    # an interpolation that would build a node after the check is resolved before it
    sneaky = {"model": {"net": "${oc.create:'{_target_: os.system, command: touch x}'}"}}
    with pytest.raises(UserError, match="_target_='os.system'"):
        checked(sneaky, "run.ckpt")


def test_a_network_takes_only_the_arguments_its_builder_declares(digits_run, tmp_path):
    def extra(ckpt):
        ckpt["hyper_parameters"]["config"]["model"]["net"]["shell"] = "echo hi"

    odd = edited(digits_run, tmp_path / "odd.ckpt", extra)
    with pytest.raises(UserError, match="ConvNet takes no argument 'shell' \\(it takes: "):
        cnnlab.load(odd)


@pytest.mark.parametrize(
    "edit, line",
    [
        (setting("calibration", {"temperature": 0.0}),
         "calibration.temperature=0.0 is not a finite number > 0; fit it again with make eval"),
        (setting("calibration", {"temperature": math.nan}), "calibration.temperature=nan is not"),
        (setting("calibration", {"temperature": -1.5}), "calibration.temperature=-1.5 is not"),
        (nan_weight, "state_dict['net.features.0.weight'] holds NaN or infinite weights"),
        (setting("class_names", ["0", "1", "2"]),
         "class_names has 3 entries but the network has 10 classes"),
        (lambda ckpt: ckpt.pop("state_dict"), "has no state_dict (the trained weights)"),
    ],
    ids=["temperature-0", "temperature-nan", "temperature-negative", "nan-weights",
         "short-class-names", "no-state-dict"],
)  # fmt: skip
def test_a_hand_edited_checkpoint_is_one_line(edit, line, command, digits_run, tmp_path):
    path = edited(digits_run, tmp_path / "edited.ckpt", edit)
    with pytest.raises(UserError, match=re.escape(line)):
        cnnlab.load(path)
    image = tmp_path / "a.png"
    Image.new("L", (28, 28), 0).save(image)
    proc = command("predict", f"ckpt_path={path}", f"images={image}")
    assert proc.returncode == 1, proc.stderr[-2000:]
    (said,) = proc.stderr.strip().splitlines()
    assert said.startswith(f"error: {path}") and line in said


def test_the_demo_refuses_a_busy_port_and_a_bad_host_in_one_line(command, digits_run, tmp_path):
    ckpt = f"ckpt_path={digits_run / CKPT}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = command("demo", ckpt, f"port={port}")
    assert busy.returncode == 1
    assert busy.stderr.strip() == (
        f"error: port={port} on 127.0.0.1 is in use by another program; choose a free one, "
        f"e.g. port={port + 1}"
    )
    bad = command("demo", ckpt, "host=no.such.host.invalid")
    assert bad.returncode == 1 and bad.stderr.startswith(
        "error: host='no.such.host.invalid' is not an address to serve on ("
    )
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.log"))


def test_the_demo_reads_uploads_only(demo_server, tmp_path):
    """Server paths, `..` paths and non-image files, sent as a visitor would: nothing outside the
    upload folder is read, no error names a server path, no refused upload stays served."""
    gradio_client = pytest.importorskip("gradio_client")
    from gradio.utils import get_upload_folder

    url, _ = demo_server
    cache = Path(get_upload_folder())
    secret = tmp_path / "secret.png"  # an image on the server: its overlay would leak it
    Image.new("L", (28, 28), 255).save(secret)
    before = set(cache.rglob("*")) if cache.exists() else set()
    for path in ["/etc/passwd", str(secret), f"{cache}/../../{secret}", "../../etc/passwd"]:
        # The raw API, as a script would send it: a FileData naming a path on the server.
        data = [{"path": path, "meta": {"_type": "gradio.FileData"}}, PREDICTED, "gradcam"]
        event = httpx.post(f"{url}gradio_api/call/classify", json={"data": data}).json()
        answer = httpx.get(f"{url}gradio_api/call/classify/{event['event_id']}", timeout=60).text
        assert "event: error" in answer and "confidences" not in answer, answer
    assert (set(cache.rglob("*")) if cache.exists() else set()) == before  # nothing copied in

    # Through the client, a local file is uploaded first: a non-image is refused by its name,
    # and its copy is deleted, so no URL serves it afterwards.
    client = gradio_client.Client(url, verbose=False)
    notes = tmp_path / "passwd"
    notes.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(Exception) as refused:
        client.predict({"path": str(notes), "meta": {"_type": "gradio.FileData"}}, PREDICTED,
                       "gradcam", api_name="/classify")  # fmt: skip
    assert "cannot read image passwd" in str(refused.value)
    assert str(cache) not in str(refused.value) and str(tmp_path) not in str(refused.value)
    assert not [p for p in cache.rglob("passwd")]


def test_the_page_admits_only_files_in_the_upload_folder(tmp_path):
    pytest.importorskip("gradio")
    from cnnlab.demo.page import uploaded

    cache = tmp_path / "gradio"
    (cache / "abc").mkdir(parents=True)
    image = cache / "abc" / "x.png"
    Image.new("L", (8, 8)).save(image)
    assert uploaded({"path": str(image), "orig_name": "cat.png"}, cache) == (image, "cat.png")
    outside = tmp_path / "secret.png"
    shutil.copy(image, outside)
    (cache / "abc" / "link.png").symlink_to(outside)
    for path in [str(outside), f"{cache}/abc/../../secret.png", str(cache / "abc" / "link.png"),
                 str(cache / "abc")]:  # fmt: skip
        with pytest.raises(UserError, match="the page reads only images uploaded to it") as err:
            uploaded({"path": path}, cache)
        assert str(tmp_path) not in str(err.value)


def test_moving_the_data_folder_never_rewrites_a_builders_name():
    from cnnlab.core.checkpoint import rebase

    stored = {"paths": {"data_dir": "cnnlab"}, "data": {"source": {
        "_target_": "cnnlab.data.sources.mnist_sample", "root": "cnnlab/mnist"}}}  # fmt: skip
    moved = rebase(stored, "cnnlab", "/elsewhere")
    assert moved["data"]["source"] == {"_target_": "cnnlab.data.sources.mnist_sample",
                                       "root": "/elsewhere/mnist"}  # fmt: skip


def test_the_page_binds_where_it_is_told_and_warns_for_the_network(
    command, digits_run, monkeypatch
):
    """host=0.0.0.0 is served (Gradio's launch, stubbed here: no server opened to the network)
    after a one-line warning; the default says it is this machine only."""
    gradio = pytest.importorskip("gradio")
    launched = []
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **kw: launched.append(kw))
    ckpt = f"ckpt_path={digits_run / CKPT}"
    opened = command("demo", ckpt, f"port={free_port()}", "host=0.0.0.0", "examples=0")
    assert opened.returncode == 0, opened.stderr[-2000:]
    assert launched[-1]["server_name"] == "0.0.0.0"
    assert ("host=0.0.0.0: the page is reachable from the network, by anyone who can reach this "
            "machine (it asks for no password)") in opened.stdout + opened.stderr  # fmt: skip
    local = command("demo", ckpt, f"port={free_port()}", "examples=0")
    assert local.returncode == 0 and launched[-1]["server_name"] == "127.0.0.1"
    assert "the page is served on this machine only (host=127.0.0.1)" in local.stdout + local.stderr

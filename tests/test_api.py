"""The Python API (`cnnlab.train`, `config`, `evaluate`, `predict`): the commands' own path
without a command line — any number of calls in one process (a notebook's kernel), the command
line's one-line errors as `cnnlab.UserError`, the caller's logging left alone, a real Jupyter
kernel driving it, and a kernel interrupt that leaves the run resumable."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import cnnlab

REPO = Path(__file__).resolve().parents[1]
QUICK = ["model=mlp", "trainer.max_epochs=1", "callbacks.progress_bar=null"]


@pytest.fixture
def where(tmp_path, data_dir, monkeypatch) -> list[str]:
    """Runs under tmp_path, data from the session's folder (as CNNLAB_ROOT and CNNLAB_DATA)."""
    monkeypatch.setenv("CNNLAB_ROOT", str(tmp_path))
    monkeypatch.setenv("CNNLAB_DATA", str(data_dir))
    return []


def test_train_twice_in_one_process_each_run_its_own_folder(where, tmp_path):
    root = logging.getLogger()
    mine = logging.StreamHandler()
    root.addHandler(mine)
    before = (list(root.handlers), root.level)
    try:
        first = cnnlab.train(*QUICK)
        second = cnnlab.train(*QUICK, "seed=7")
        assert (list(root.handlers), root.level) == before  # the caller's logging, as it was
    finally:
        root.removeHandler(mine)
    assert first.folder != second.folder
    for run in (first, second):
        assert run.folder.parent.parent == tmp_path / "outputs" / "train"
        assert 0.5 < run.metrics["test/acc"] <= 1.0
        assert run.metrics == json.loads((run.folder / "metrics.json").read_text())
        assert run.best_checkpoint.is_file() and run.last_checkpoint.is_file()
    model = first.load()
    assert len(model.class_names) == 10 and model.class_names[7] == "7 - seven"
    evaluated = cnnlab.evaluate(first.best_checkpoint)
    assert evaluated["test/acc"] == pytest.approx(first.metrics["test/acc"], abs=1e-6)


def test_a_mistake_is_the_command_lines_line_as_a_user_error(where, command, tmp_path):
    for bad in ("trainer.max_epochs=-5", "model=nope"):
        with pytest.raises(cnnlab.UserError) as caught:
            cnnlab.train(*QUICK, bad)
        assert not list((tmp_path / "outputs").rglob("metrics.json"))  # no run folder left
        line = command("train", bad).stderr.strip().splitlines()[-1]
        assert f"error: {caught.value}" == line
    with pytest.raises(cnnlab.UserError, match="model=nope|Could not find 'model/nope'"):
        cnnlab.config("model=nope")
    with pytest.raises(cnnlab.UserError, match=r"config_dir=\S+ is not a folder"):
        cnnlab.config(config_dir=REPO / "no-such-folder")


def test_config_is_the_composed_checked_config_with_a_projects_folder(tmp_path):
    assert cnnlab.config("model=mlp").model.net._target_ == "cnnlab.models.mlp.MLP"
    vgg = cnnlab.summary("model=vgg16", "data=imagenet")  # make summary's numbers, on meta
    assert (vgg.params, vgg.macs) == (138_357_544, 15_470_264_320)
    project = tmp_path / "myproject"
    (project / "model").mkdir(parents=True)
    (project / "model" / "tiny.yaml").write_text(
        "defaults:\n  - mlp\n  - _self_\nnet:\n  hidden: 7\n"
    )
    assert cnnlab.config("model=tiny", config_dir=project).model.net.hidden == 7
    with pytest.raises(cnnlab.UserError, match="valid options"):
        cnnlab.config("model=tiny")  # not without the project's folder


def test_augment_preview_is_the_commands_picture(where, command, tmp_path):
    import numpy as np
    from PIL import Image

    picture = cnnlab.augment_preview("augment=mnist", "seed=5")
    printed = command("augment_preview", "augment=mnist", "seed=5").stdout
    written = re.search(r"wrote (\S+\.png)", printed).group(1)
    with Image.open(written) as img:  # the command's grid has 32 images; the API's default too
        assert np.array_equal(np.asarray(picture), np.asarray(img.convert("RGB")))
    other = cnnlab.augment_preview("augment=mnist", "seed=6", count=8)
    assert other.size[0] == picture.size[0] and other.size[1] < picture.size[1]  # 8: one row
    with pytest.raises(cnnlab.UserError, match="valid options"):
        cnnlab.augment_preview("augment=nope")


def test_predict_reads_files_as_predict_does(digits_run, tmp_path):
    import numpy as np
    from PIL import Image

    path = tmp_path / "seven.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(path)
    [(name, label, prob)] = cnnlab.predict(digits_run / "checkpoints" / "best.ckpt", [path])
    assert name == str(path) and label.split(" - ")[0] in "0123456789" and 0 < prob <= 1
    with pytest.raises(cnnlab.UserError):
        cnnlab.predict(digits_run / "checkpoints" / "best.ckpt", [tmp_path / "missing.png"])


KERNEL = """
import cnnlab
args = {quick!r}
first = cnnlab.train(*args)
second = cnnlab.train(*args)
print("two runs", first.folder != second.folder, first.metrics["test/acc"] > 0.5)
try:
    cnnlab.train(*args, "trainer.max_epochs=-5")
except cnnlab.UserError as err:
    print("user error:", err)
"""
QUIET = """
quiet = cnnlab.train(*args, "seed=3", quiet=True)
"""
LOUD = """
print("quiet run", quiet.metrics["test/acc"] > 0.5, quiet.best_checkpoint.is_file())
loud = cnnlab.train(*args, "seed=3")
"""
INTERRUPTED = """
fault = "+callbacks.fault."
resume = [*args, "run_id=nb", "trainer.max_epochs=2", fault + "_target_=tests.faults.SignalAt",
          fault + "step=2", fault + "signal_name=SIGINT", fault + "once={once}"]
try:
    cnnlab.train(*resume)
except cnnlab.RunInterrupted as stop:
    print("interrupted:", stop)
run = cnnlab.train(*resume, "ckpt_path=last")
print("resumed", run.folder.name, run.metrics["epochs"])
"""


def test_the_api_in_a_real_jupyter_kernel(where, tmp_path):
    """ipykernel through nbclient, as a notebook runs it: two runs, a mistake, a quiet run that
    shows nothing (the same run not quiet shows its test table and folder), and a Ctrl-C (SIGINT
    to the kernel, as Jupyter's interrupt sends) that saves and resumes."""
    notebook = nbformat.v4.new_notebook()
    quick = [*QUICK, "callbacks.gradcam=null"]  # an MLP's Grad-CAM warning is no info line
    cells = (KERNEL.format(quick=quick), QUIET, LOUD,
             INTERRUPTED.format(once=tmp_path / "fired"))  # fmt: skip
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()  # fmt: skip
    out = ["".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells]
    assert "two runs True True" in out[0]
    assert ("user error: trainer.max_epochs=-5 is out of range; valid: a whole number ≥ 1, or "
            "-1 (no limit)") in out[0]  # fmt: skip
    assert notebook.cells[1].outputs == []  # quiet: no log line, bar, table, warning or folder
    assert "quiet run True True" in out[2]
    assert "Test metric" in str(notebook.cells[2].outputs) and "run folder: " in out[2]
    assert "interrupted: interrupted (Ctrl-C)" in out[3], out[3]
    assert "resumed nb 2" in out[3], out[3]


def test_the_pages_block_runs_as_written(where, tmp_path, monkeypatch, capfd):
    """docs/python-api.md's example, run as a script from a folder of its own: the printed line
    is the one its comment shows."""
    page = (REPO / "docs" / "python-api.md").read_text()
    block = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "python-api.md", "exec"), {"__name__": "__main__"})
    printed = [line for line in capfd.readouterr().out.splitlines() if line.strip()]
    promised = re.search(r"print\(err\)  # (.*)$", block, re.M).group(1)
    assert printed[-1] == promised
    accuracy, best = re.search(r"^(0\.\d+) (\S+best\.ckpt)$", "\n".join(printed), re.M).groups()
    assert Path(best).is_file() and 0.5 < float(accuracy) <= 1

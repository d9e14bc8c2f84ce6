"""cnnlab as a package: a wheel that trains from any folder, a user project that extends it
through `--config-dir` (the site's worked example, docs/own-project.md, run as written),
`cnnlab.load` in a notebook, and one line naming the extra when an optional plugin is missing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cnnlab.training.module import ClassifierModule

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    """This interpreter's environment without cnnlab's folder overrides: outputs go to cwd."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNNLAB_")}
    return {**env, **extra}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_wheel_installs_and_trains_from_an_unrelated_folder(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    for part in ("src", "conf"):
        shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(wheels)],
        tmp_path,
        _env(),
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("cnnlab-*.whl")
    install = _run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        tmp_path,
        _env(),
    )
    assert install.returncode == 0, install.stderr[-2000:]
    assert (site / "cnnlab" / "conf" / "train.yaml").is_file()  # the configs ship in the wheel
    assert (site / "cnnlab" / "py.typed").is_file()  # type checkers read cnnlab's annotations
    assert list(site.glob("cnnlab-*.dist-info/licenses/LICENSE"))  # the MIT text pyproject names

    elsewhere.mkdir()
    proc = _run(
        [str(site / "bin" / "cnnlab-train"), "debug=fast_dev_run"],
        elsewhere,
        _env(PYTHONPATH=str(site)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (elsewhere / "outputs" / "train").glob("*/*")
    assert json.loads((run / "metrics.json").read_text())["test/acc"] >= 0
    assert (elsewhere / "data" / "mnist_sample").is_dir()  # data lands under the folder too
    sources = yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())["hydra"]["runtime"]
    mains = [s["path"] for s in sources["config_sources"] if s["provider"] == "main"]
    assert mains == [str(site / "cnnlab" / "conf")]  # the installed configs, not the checkout's


def _site_project(root: Path) -> str:
    """Write the files of the site's "Your own project" page; return its command."""
    section = (REPO / "docs" / "own-project.md").read_text().split("\n## ", 1)[0]
    # Each block is written whole, as a user pastes it: its "# file:" line included (a header
    # such as "# @package _global_" must come before it to count).
    blocks = re.findall(r"```(?:python|yaml)\n((?:# @[^\n]*\n)?# file: (\S+)[^\n]*\n.*?)```",
                        section, flags=re.S)  # fmt: skip
    assert {p for _, p in blocks} >= {"mypkg/nets.py", "conf/model/tinynet.yaml",
                                      "conf/experiment/mine.yaml"}  # fmt: skip
    for body, path in blocks:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(body)
    (command,) = re.findall(r"^cnnlab-train .*$", section, flags=re.M)
    return command


@pytest.mark.slow
def test_a_user_project_adds_its_own_network_data_and_experiment(tmp_path, data_dir):
    project = tmp_path / "my_project"
    command = _site_project(project)
    assert command == "cnnlab-train --config-dir conf experiment=mine"
    # A same-named file replaces cnnlab's for this project only.
    (project / "conf" / "optimizer").mkdir()
    (project / "conf" / "optimizer" / "adamw.yaml").write_text(
        "_target_: torch.optim.AdamW\n_partial_: true\nlr: 0.01\nweight_decay: 0.0123\n"
    )
    script = Path(sys.executable).parent / "cnnlab-train"
    args = [str(script), *command.split()[1:], "debug=test", "callbacks.gradcam.every_n_epochs=1"]
    proc = _run(args, project, _env(CNNLAB_DATA=str(data_dir)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (project / "outputs" / "train").glob("*/*")
    stored = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert stored["model"]["net"]["_target_"] == "mypkg.nets.TinyNet"
    assert (
        stored["data"]["name"] == "bright_or_dark" and stored["optimizer"]["weight_decay"] == 0.0123
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val/acc_best"] > 0.9  # bright vs dark is easy: it really trained
    # The replaced built-in is announced once, on the console and in the run's log.
    line = "--config-dir conf replaces cnnlab's own optimizer/adamw.yaml"
    assert (proc.stdout + proc.stderr).count(line) == 1
    assert line in (run / "train.log").read_text()

    loaded = _load_in_a_notebook(run / "checkpoints" / "best.ckpt", project)
    assert loaded["class_names"] == ["dark", "bright"] and loaded["acc"] > 0.9


def _load_in_a_notebook(ckpt: Path, project: Path) -> dict:
    """`cnnlab.load` in a fresh interpreter that never imports Hydra's entry points."""
    code = f"""
import json, sys, torch
sys.path.insert(0, {str(project)!r})
import cnnlab
from cnnlab.core.errors import UserError
from mypkg.data import bright_or_dark
try:
    cnnlab.load({str(ckpt)!r})  # the project's builders are not cnnlab's: refused without it
except UserError as err:
    assert "_target_='mypkg." in str(err), err
else:
    raise AssertionError("a checkpoint naming mypkg's builders loaded without config_dir")
m = cnnlab.load({str(ckpt)!r}, config_dir={str(project / "conf")!r})
test = bright_or_dark(64, 16, seed=1).train
acc = (m.predict(test.images).argmax(1) == test.targets).float().mean().item()
trained = "hydra.main" in sys.modules and "cnnlab.commands.train" in sys.modules
print(json.dumps({{"class_names": m.class_names, "acc": acc, "training": m.net.training,
                  "hydra_main": trained}}))
"""
    proc = _run([sys.executable, "-c", code], project, _env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["training"] is False and out["hydra_main"] is False
    return out


@pytest.mark.slow
def test_load_returns_the_network_its_classes_and_preprocessing(quick):
    from cnnlab.commands.train import train

    cfg = quick("data=fake", "data.num_classes=4", "data.image_size=20", "model=alexnet")
    train(cfg)
    model = __import__("cnnlab").load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert not model.net.training
    assert model.class_names == [f"class_{i}" for i in range(4)]
    assert model.preprocessing.input_size == 67  # AlexNet's minimum, decided once in training
    assert model.preprocessing.mean == pytest.approx((0.5, 0.5, 0.5))
    images = torch.randint(0, 256, (3, 3, 20, 20), dtype=torch.uint8)
    assert model.preprocess(images).shape == (3, 3, 67, 67)
    probs = model.predict(images)
    assert probs.shape == (3, 4) and torch.allclose(probs.sum(1), torch.ones(3))


def test_load_from_checkpoint_points_to_cnnlab_load(tmp_path):
    with pytest.raises(TypeError, match=r"use cnnlab\.load\("):
        ClassifierModule.load_from_checkpoint(tmp_path / "best.ckpt")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "plugin", "hint"),
    [
        (
            "hparams_search=digits_optuna",
            "hydra_optuna_sweeper",
            "optuna is not installed: pip install 'cnnlab[sweeps]'",
        ),
        (
            "launcher=submitit_local",
            "hydra_submitit_launcher",
            "submitit_local is not installed: pip install 'cnnlab[slurm]'",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_the_pip_command(cli, tmp_path, override, plugin, hint):
    blocker = tmp_path / "without_plugin"
    blocker.mkdir()
    # The optional plugin is absent: its package cannot be imported.
    (blocker / "sitecustomize.py").write_text(
        f"import sys\nsys.modules['hydra_plugins.{plugin}'] = None\n"
    )
    pythonpath = os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])
    proc = cli("train", override, "debug=fast_dev_run", env={"PYTHONPATH": pythonpath})
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert len(errors) == 1 and hint in errors[0], proc.stderr[-2000:]


def test_a_missing_config_dir_or_user_target_is_one_line(command, tmp_path):
    proc = command("train", "--config-dir", str(tmp_path / "nowhere"), "debug=fast_dev_run")
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "nowhere" in errors[0], proc.stderr[-2000:]
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "broken.yaml").write_text("net:\n  _target_: nopkg.Net\nhead: fc\ncam_layer: null\n")
    proc = command("train", "--config-dir", str(tmp_path / "conf"), "model=broken")
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert "could not build model" in errors[0] and "nopkg" in errors[0]

"""The codebase's shape, held by tests: layers that only point down (import-linter's contracts in
pyproject.toml, which also fail on a deliberate upward import), a notebook's `cnnlab.load` that
imports neither Lightning, Hydra nor torchmetrics, one way to write files and Markdown tables, and
configs whose every value shows in the file that sets it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SRC = REPO / "src" / "cnnlab"


def _lint_imports(src_root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(src_root), "PATH": str(LINT_IMPORTS.parent)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"),
                           "--no-cache"], cwd=src_root, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_import_contracts_hold_and_catch_an_upward_import(tmp_path):
    assert _lint_imports(REPO / "src").returncode == 0
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    files = copy / "cnnlab" / "core" / "files.py"
    files.write_text(files.read_text() + "\nfrom cnnlab.training import fit  # upward\n")
    proc = _lint_imports(copy)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "Layers only point down BROKEN" in proc.stdout
    assert re.search(r"cnnlab\.core\.files -> cnnlab\.training\.fit", proc.stdout), proc.stdout


def test_cnnlab_load_imports_neither_lightning_hydra_nor_torchmetrics(digits_run, tmp_path):
    photo = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype("uint8")).save(photo)
    code = f"""
import json, sys
import cnnlab
model = cnnlab.load({str(digits_run / "checkpoints" / "best.ckpt")!r})
probs = model.predict_files([{str(photo)!r}])
heavy = ("lightning", "pytorch_lightning", "lightning_fabric", "hydra", "torchmetrics",
         "pytorch_grad_cam")
print(json.dumps({{"loaded": sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy)),
                  "shape": list(probs.shape)}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"loaded": [], "shape": [1, 10]}


def _source_lines(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if rx.search(line)]  # fmt: skip


def test_files_are_renamed_into_place_only_by_core_files():
    # The one atomic-write helper: a temporary name, then os.replace (a folder's too).
    assert {
        x.split(":")[0] for x in _source_lines(r"os\.replace\(|\.rename\(|\.replace\(final")
    } == {"core/files.py"}


def test_markdown_tables_are_written_only_by_core_tables():
    assert {x.split(":")[0] for x in _source_lines(r'"\|---|---\|')} == {"core/tables.py"}


def test_run_files_and_checkpoint_keys_are_named_only_by_the_contract():
    files = r'"(last|best|on_exception)\.ckpt"|"metrics\.json"|"checkpoints"'
    keys = r'(ckpt|checkpoint|stored)(\.get\(|\[)"(class_names|best_so_far|calibration|' \
           r'tracking_runs|hyper_parameters|state_dict)"'  # fmt: skip
    assert {x.split(":")[0] for x in _source_lines(f"{files}|{keys}")} == {"core/checkpoint.py"}


def test_train_yaml_sets_no_value_of_a_group_it_picks():
    """Each value of the default recipe shows in the group file that sets it: train.yaml's own
    keys (applied after the groups) never override a group's."""
    train = yaml.safe_load((REPO / "conf" / "train.yaml").read_text())
    groups = {next(iter(d)).split("/")[0] for d in train["defaults"] if isinstance(d, dict)}
    assert not groups & set(train), sorted(groups & set(train))
    trainer = yaml.safe_load((REPO / "conf" / "trainer" / "default.yaml").read_text())
    module = yaml.safe_load((REPO / "conf" / "module" / "default.yaml").read_text())
    assert (trainer["max_epochs"], module["label_smoothing"], module["channels_last"]) == (
        12, 0.1, True)  # fmt: skip

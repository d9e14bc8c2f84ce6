"""benchmarks/gpu_check.sh: its CPU dry run (tiny sizes) goes through every measurement a GPU
machine would make, so the script is ready the day a GPU is lent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO


@pytest.mark.slow
def test_gpu_check_dry_run_measures_every_row(tmp_path):
    out = tmp_path / "gpu_check.md"
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "PY": sys.executable, "CNNLAB_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    # header, two precisions, guard off, trainer=gpu defaults, syncs, pipeline, DDP
    assert len(rows) == 1 + 2 + 1 + 1 + 1 + 1 + 1
    for row in rows[1:5]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and float(cells[1].replace(",", "")) > 0
        assert float(cells[2].replace(",", "")) > 0 and float(cells[3]) > 0
    assert "bf16-mixed, channels_last" in table and "data.decode=gpu" in table
    assert "callbacks.nonfinite=null" in table and "trainer=gpu defaults" in table
    syncs = next(r for r in rows if "CUDA syncs per training step" in r)
    assert syncs.split("|")[2].strip() == "0.00"  # none on a CPU; the GPU run's figure goes here
    if not torch.cuda.is_available():
        assert "data.decode=gpu: no CUDA device here; decoding on the CPU (auto)" in (
            proc.stdout + proc.stderr
        )


def test_without_cuda_it_says_so_in_one_line(tmp_path):
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--out", str(tmp_path / "gpu_check.md")],
        cwd=REPO,
        env={**os.environ, "PY": sys.executable, "CUDA_VISIBLE_DEVICES": ""},  # none, on any card
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: no CUDA device; run with --dry-run for the CPU check"
    )
    assert not (tmp_path / "gpu_check.md").exists()

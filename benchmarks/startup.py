"""Start-up and end-to-end rows of `make bench`: the default `make train` against the plain loop
script, each a fresh process (interpreter start and imports included), and what imports cost."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.bench_common import REPO, REPS, compose, rows, stats


def run_child(cmd: list[str], env: dict) -> tuple[str, float, float]:
    """Run one process to the end: its output, wall seconds from launch (interpreter start-up
    included) and its peak RSS in MB (os.wait4: that child's; Linux starts it at the parent's
    high-water mark, so call this while the parent is small)."""
    env = {
        **env,
        "CNNLAB_BENCH_T0": str(time.time()),
    }  # both scripts time their first step from here
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.time()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0  # reaped by wait4
        seconds = time.time() - t0
        out.seek(0)
        return out.read(), seconds, usage.ru_maxrss / 1024  # KiB → MiB on Linux


def end_to_end() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ours, theirs, ours_first, theirs_first, accs, ours_rss, theirs_rss = [], [], [], [], [], [], []
    epochs = int(compose().trainer.max_epochs)
    for rep in range(REPS):
        timer = "+callbacks.bench_timer._target_=benchmarks.timing.FitTimer"
        out, seconds, rss = run_child(
            [sys.executable, "-m", "cnnlab.train", f"seed={42 + rep}", timer], env
        )
        ours.append(seconds)
        ours_first.append(float(re.search(r"first_step_s=([\d.]+)", out).group(1)))
        accs.append(float(re.search(r"'test/acc': ([\d.]+)", out).group(1)))
        ours_rss.append(rss)
        out, seconds, rss = run_child(
            [sys.executable, "benchmarks/plain_loop.py", "--epochs", str(epochs)], env
        )
        theirs.append(seconds)
        theirs_first.append(float(re.search(r"first_step_s=([\d.]+)", out).group(1)))
        theirs_rss.append(rss)
    rows.append(
        (
            f"default `make train` wall s ({epochs} epochs, start-up incl.)",
            stats(ours),
            stats(theirs),
            f"{statistics.median(ours) / statistics.median(theirs):.3f}",
        )
    )
    rows.append(
        (
            "time to first training step, s",
            stats(ours_first),
            stats(theirs_first),
            f"{statistics.median(ours_first) / statistics.median(theirs_first):.3f}",
        )
    )
    rows.append(
        ("default recipe test accuracy (1,000 digits)", " ".join(f"{a:.3f}" for a in accs), "", "")
    )
    rows.append(
        (
            "peak RSS, MB (max over runs)",
            f"{max(ours_rss):,.0f}",
            f"{max(theirs_rss):,.0f}",
            f"{max(ours_rss) / max(theirs_rss):.2f}",
        )
    )


def import_costs() -> None:
    """Where the start-up goes: a fresh interpreter importing torch, torch + torchvision (what a
    plain script that loads data with torchvision pays), Lightning, and cnnlab's entry point."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seconds = {}
    for what in ("torch", "torch, torchvision", "lightning", "cnnlab.train"):
        times = []
        for _ in range(REPS):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {what}"], env=env, check=True)
            times.append(time.perf_counter() - t0)
        seconds[what] = times
    base = statistics.median(seconds["torch"])
    for what, times in seconds.items():
        rows.append(
            (
                f"fresh interpreter + `import {what}`, s",
                stats(times) if what != "torch" else "",
                stats(times) if what == "torch" else "",
                f"{statistics.median(times) / base:.2f}× import torch",
            )
        )

"""Start-up and end-to-end rows of `make bench`: the default `make train` against the plain loop
script, each a fresh process (interpreter start and imports included), and what imports cost."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time

from benchmarks.bench_common import REPO, REPS, compose, rows, stats
from benchmarks.sliced import run_pair_taking_turns


def pair_ratio(ours: list[float], theirs: list[float]) -> str:
    """The median over repetitions of cnnlab ÷ plain within each pair (each pair ran in
    alternating slices, so it shares the machine's state; see sliced.py)."""
    return f"{statistics.median(a / b for a, b in zip(ours, theirs, strict=True)):.3f}"


def end_to_end() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ours, theirs, ours_first, theirs_first, accs, ours_rss, theirs_rss = [], [], [], [], [], [], []
    cfg = compose()
    epochs = int(cfg.trainer.max_epochs)
    recipe = ["--epochs", str(epochs), "--batch-size", str(cfg.data.batch_size)]
    recipe += ["--lr", str(cfg.optimizer.lr)]
    for rep in range(REPS):
        timer = "+callbacks.bench_timer._target_=benchmarks.timing.FitTimer"
        cnnlab = [sys.executable, "-m", "cnnlab.commands.train", f"seed={42 + rep}", timer]
        plain = [sys.executable, "benchmarks/plain_loop.py", *recipe]
        a, b = run_pair_taking_turns(rep, cnnlab, plain, env, REPO)
        ours.append(a.seconds)
        theirs.append(b.seconds)
        ours_first.append(a.marks("first_step")[0])
        theirs_first.append(b.marks("first_step")[0])
        accs.append(float(re.search(r"'test/acc': ([\d.]+)", a.output).group(1)))
        ours_rss.append(a.rss_mb)
        theirs_rss.append(b.rss_mb)
    rows.append(
        (
            f"default `make train` wall s ({epochs} epochs, start-up incl.)",
            stats(ours),
            stats(theirs),
            pair_ratio(ours, theirs),
        )
    )
    rows.append(
        (
            "time to first training step, s (from process launch)",
            stats(ours_first),
            stats(theirs_first),
            pair_ratio(ours_first, theirs_first),
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
    """Where the start-up goes: a fresh interpreter importing torch, Lightning (which imports
    torchmetrics, and with it torchvision, scipy.signal and matplotlib), and cnnlab's entry
    point."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seconds = {}
    for what in ("torch", "lightning", "cnnlab.commands.train"):
        times = []
        for _ in range(1):  # explains the start-up row above; the bench must stay < 10 min
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


def time_to_error_line() -> None:
    """A config mistake is answered before torch and Lightning are imported (issue target ≤ 2 s
    from launch): a fresh `python -m cnnlab.commands.train` with a bad override, until it exits."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for override in ("trainer.max_epochs=abc", "data.batch_size=0", "model=nope"):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "cnnlab.commands.train", override],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            times.append(time.perf_counter() - t0)
            assert proc.returncode == 1 and proc.stderr.startswith("error:"), proc.stderr
        rows.append(
            (f"launch → one `error:` line, s (`{override}`)", stats(times), "", "≤ 2 s target")
        )

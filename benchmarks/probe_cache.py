"""A linear probe on kept features against today's probe (the frozen backbone run on every
batch), on a ResNet-50 (torchvision's, 23.5 M parameters, frozen at its seeded start: no weights
can be downloaded here) over the MNIST sample at 32 px, 10 epochs, no augmentation: wall time of
the whole run (fit, test) with the embedding pass included, then again with the features already
kept; the two probes' test accuracies; and k-NN, logistic regression and the linear probe on the
same kept features. Each timed run is repeated (BENCH_REPS, at least 2) and the noise floor is
the larger max ÷ min spread of the two sides. `python benchmarks/probe_cache.py` alone, or as
part of `make bench`."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_common import REPS, rows, stats  # noqa: E402

PROBE = ("model=resnet50", "data.input_size=32", "freeze=linear_probe", "augment=none",
         "trainer.max_epochs=10", "eval_report=false", "logger=none", "callbacks.gradcam=null",
         "callbacks.diagnostics=null", "callbacks.augment_grid=null")  # fmt: skip


def _timed(*overrides: str) -> tuple[float, dict]:
    import cnnlab

    start = time.perf_counter()
    run = cnnlab.train(*PROBE, *overrides, quiet=True)
    return time.perf_counter() - start, run.metrics


def probe_cache_rows() -> None:
    reps = max(2, REPS)
    with tempfile.TemporaryDirectory() as tmp:
        out = f"paths.output_dir={tmp}/run"
        plain = [_timed(out, "freeze.cache=false") for _ in range(reps)]
        fresh = [_timed(out, f"paths.feature_cache={tmp}/cache{i}") for i in range(reps)]
        kept = [_timed(out, f"paths.feature_cache={tmp}/cache0") for _ in range(reps)]
        heads = {kind: _timed(out, f"paths.feature_cache={tmp}/cache0", f"classifier={kind}")[1]
                 for kind in ("knn", "logistic")}  # fmt: skip
    seconds = {name: [t for t, _ in runs] for name, runs in
               (("plain", plain), ("fresh", fresh), ("kept", kept))}  # fmt: skip
    floor = max(max(v) / min(v) for v in (seconds["plain"], seconds["fresh"]))
    for label, name in (("embedding included", "fresh"), ("features already kept", "kept")):
        ratio = statistics.median(seconds["plain"]) / statistics.median(seconds[name])
        rows.append((
            f"linear probe, ResNet-50 frozen, 10 epochs on 3,600 digits, wall s of the run "
            f"(cnnlab column: on kept features, {label}; other: the backbone on every batch; "
            f"noise floor {floor:.2f}×)",
            stats(seconds[name]), stats(seconds["plain"]), f"{ratio:.1f}×",
        ))  # fmt: skip
    acc = {"cached": fresh[0][1]["test/acc"], "plain": plain[0][1]["test/acc"]}
    rows.append((
        "linear probe, ResNet-50 frozen: test accuracy on 1,000 digits (cnnlab column on kept "
        "features, other the backbone on every batch; the ratio column cached − plain)",
        f"{acc['cached']:.2%}", f"{acc['plain']:.2%}",
        f"{(acc['cached'] - acc['plain']) * 100:+.2f} points",
    ))  # fmt: skip
    rows.append((
        "heads on the same kept ResNet-50 features: test accuracy (cnnlab column k-NN, cosine, "
        "k by validation; other logistic regression, L-BFGS, L2 by validation; the linear "
        "probe, 10 epochs, is the row above)",
        f"{heads['knn']['test/acc']:.2%}", f"{heads['logistic']['test/acc']:.2%}", "",
    ))  # fmt: skip


if __name__ == "__main__":
    import os
    import platform

    import torch

    from cnnlab.cli.machine import cpu_model

    started = time.perf_counter()
    probe_cache_rows()
    print(f"Machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; bench took "
          f"{time.perf_counter() - started:.0f} s\n")  # fmt: skip
    print("| measure | cnnlab | plain | ratio |\n|---|---|---|---|")
    print("\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows))

"""`make bench`: cnnlab against a plain PyTorch loop, measured in the same run, with ratios.

Rows (each module's docstring says more): training images/s, default callbacks on; `make train`
end to end and to the first step; data pipeline vs model; FLOP utilisation; peak memory; host
cost per step (host_cost.py); channels_last, bf16, torch.compile; JPEG decoding (decode.py); ONNX
vs eager (inference.py); int8 vs fp32 ONNX (int8.py); the probe on kept features (probe_cache.py).
`SAVE=1` writes benchmarks/results/<machine>.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_common import REPS, compose, rows, stats  # noqa: E402
from benchmarks.decode import decode_rows  # noqa: E402
from benchmarks.host_cost import host_rows  # noqa: E402
from benchmarks.inference import inference_rows  # noqa: E402
from benchmarks.int8 import int8_rows  # noqa: E402
from benchmarks.probe_cache import probe_cache_rows  # noqa: E402
from benchmarks.sliced import run_pair_taking_turns  # noqa: E402
from benchmarks.startup import (  # noqa: E402
    end_to_end,
    import_costs,
    pair_ratio,
    time_to_error_line,
)
from cnnlab.cli.machine import cpu_model  # noqa: E402


def _rates(child) -> tuple[float, float, float]:
    """One child process: training images/s over the whole fit and over the steps alone, and
    the seconds per epoch spent outside the training steps (validation and epoch-end work)."""
    images = int(re.search(r"^bench_images (\d+)$", child.output, re.M).group(1))
    fit, steps = child.windows("fit_start", "fit_end"), child.windows("epoch_start", "steps_end")
    return images / fit, images / steps, (fit - steps) / len(child.marks("epoch_start"))


def throughput_pairs(*overrides: str, aa: bool = False) -> tuple[list, list]:
    """REPS pairs of (cnnlab, plain loop) processes on the same data, network, optimizer,
    schedule and seed, run in alternating slices (sliced.py); with aa, the plain loop script
    (the ConvNet on the MNIST sample, torch imports only) against itself."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ours, theirs = [], []
    for rep in range(REPS):
        with tempfile.TemporaryDirectory() as run_dir:  # a ResNet-18 run writes 135 MB
            pair = _run_throughput_pair(rep, run_dir, overrides, aa, env)
        ours.append(_rates(pair[0]))
        theirs.append(_rates(pair[1]))
    return ours, theirs


def _cnnlab_cmd(run_dir: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cnnlab.commands.train",
        "test=false",
        "+callbacks.bench_timer._target_=benchmarks.timing.FitTimer",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]


def _run_throughput_pair(rep: int, run_dir: str, overrides, aa: bool, env: dict):
    """One (cnnlab or plain, plain) pair for throughput_pairs; returns (ours, theirs)."""
    common = [f"seed={rep}", *overrides]
    plain = [sys.executable, "benchmarks/plain_loop.py", "--cnnlab", *common]
    cnnlab = _cnnlab_cmd(run_dir, *common)
    if aa:
        epochs = next(o for o in overrides if o.startswith("trainer.max_epochs="))
        plain = [sys.executable, "benchmarks/plain_loop.py", "--epochs", epochs.split("=")[1]]
    a_cmd = plain if aa else cnnlab
    return run_pair_taking_turns(rep, a_cmd, plain, env, REPO)


def throughput(name: str, *overrides: str, project_epoch: int = 0) -> float:
    """Whole-fit and steps-only rows from the same pairs, and the work per epoch outside the
    steps; with project_epoch, the whole-fit rate projected to epochs of that many images.
    Returns cnnlab's steps-only rate."""
    ours, theirs = throughput_pairs(*overrides)
    for k, what in enumerate(("whole fit incl. validation and epoch-end work", "training steps")):
        mine, plain = [r[k] for r in ours], [r[k] for r in theirs]
        rows.append(
            (f"train images/s, {name} ({what})", stats(mine), stats(plain), pair_ratio(mine, plain))
        )
    mine, plain = [r[2] for r in ours], [r[2] for r in theirs]
    rows.append(
        (
            f"{name}: seconds per epoch outside the training steps (cnnlab: validation, "
            "checkpoint, logging, Grad-CAM, diagnostics; plain: validation)",
            stats(mine),
            stats(plain),
            "",
        )
    )
    if project_epoch:

        def projected(r) -> float:  # images/s of a whole epoch of project_epoch images
            return project_epoch / (project_epoch / r[1] + r[2])

        mine, plain = [projected(r) for r in ours], [projected(r) for r in theirs]
        rows.append(
            (
                f"train images/s, {name}, whole fit projected to {project_epoch:,}-image epochs "
                "(CIFAR-10) from the two rows above",
                stats(mine),
                stats(plain),
                pair_ratio(mine, plain),
            )
        )
    return statistics.median(r[1] for r in ours)


def mlflow_cost(*overrides: str) -> None:
    """cnnlab with TensorBoard + MLflow against cnnlab with TensorBoard alone, as one pair of
    processes in alternating slices per repetition (same seed, data and callbacks; MLflow into a
    throwaway SQLite store): the whole-fit cost of adding MLflow, to read against the noise
    floor row."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    both, alone = [], []
    for rep in range(REPS):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            mlflow = (
                "logger=many",
                f"logger.mlflow.tracking_uri=sqlite:///{a}/mlflow.db",
                f"logger.mlflow.artifact_location={a}/artifacts",
            )
            pair = run_pair_taking_turns(
                rep,
                _cnnlab_cmd(f"{a}/run", f"seed={rep}", *overrides, *mlflow),
                _cnnlab_cmd(f"{b}/run", f"seed={rep}", *overrides),
                env,
                REPO,
            )
        both.append(_rates(pair[0])[0])
        alone.append(_rates(pair[1])[0])
    ratios = [x / y for x, y in zip(both, alone, strict=True)]
    rows.append(
        (
            "train images/s, ConvNet / MNIST sample, 2 epochs, whole fit: TensorBoard + MLflow "
            "(cnnlab column) vs TensorBoard alone (plain column: cnnlab too), ratio per pair "
            + " ".join(f"{r:.3f}" for r in ratios),
            stats(both),
            stats(alone),
            pair_ratio(both, alone),
        )
    )


def noise_floor(for_rows: str, *overrides: str) -> None:
    """The plain loop against itself, timed as the rows above (`for_rows` names them): what a
    ratio of identical code looks like on this machine over the same number of epochs."""
    a, b = throughput_pairs(*overrides, aa=True)
    fit_a, fit_b = [r[0] for r in a], [r[0] for r in b]
    ratios = [x / y for x, y in zip(fit_a, fit_b, strict=True)]
    rows.append(
        (
            f"noise floor for {for_rows}: plain loop ÷ plain loop, ConvNet whole fit (ratio per "
            "pair)",
            "",
            " ".join(f"{r:.3f}" for r in ratios),
            pair_ratio(fit_a, fit_b),
        )
    )


def data_pipeline(name: str, model_rate: float, *overrides: str) -> None:
    from cnnlab.training import build

    _, dm, _ = build.data_and_network(compose(*overrides))
    dm.setup("fit")
    rates = []
    for _ in range(REPS):
        start, n = time.perf_counter(), 0
        for images, targets in dm.train_dataloader():
            dm.train_batch(images, targets)
            n += len(images)
        rates.append(n / (time.perf_counter() - start))
    rows.append(
        (
            f"data pipeline images/s, {name} (model consumes {model_rate:,.0f})",
            stats(rates),
            "",
            f"{statistics.median(rates) / model_rate:.1f}× the model",
        )
    )


def matmul_peak() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start, n = time.perf_counter(), 10
    for _ in range(n):
        a @ b
    return 2 * 2048**3 * n / (time.perf_counter() - start)


def train_flops_per_image(*overrides: str) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from cnnlab.training import build

    cfg = compose(*overrides)
    prep = build.preprocessing(cfg)
    net = build.network(cfg.model, prep)
    x = torch.randn(8, cfg.data.in_channels, prep.input_size, prep.input_size)
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    return counter.get_total_flops() / 8


def knobs() -> None:
    from cnnlab.models.convnet import ConvNet

    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))

    def rate(net, steps=30, autocast=False, memory_format=torch.contiguous_format):
        opt = torch.optim.AdamW(net.parameters())
        xin = x.to(memory_format=memory_format)
        for i in range(steps + 5):
            if i == 5:
                start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = torch.nn.functional.cross_entropy(net(xin), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return steps * 128 / (time.perf_counter() - start)

    base = rate(ConvNet(in_channels=1, num_classes=10, image_size=28))
    results = {
        "channels_last": rate(
            ConvNet(in_channels=1, num_classes=10, image_size=28).to(
                memory_format=torch.channels_last
            ),
            memory_format=torch.channels_last,
        ),
        "bf16-mixed (autocast)": rate(
            ConvNet(in_channels=1, num_classes=10, image_size=28), steps=5, autocast=True
        ),
    }
    try:
        compiled = torch.compile(ConvNet(in_channels=1, num_classes=10, image_size=28))
        results["torch.compile"] = rate(compiled)
    except Exception as err:  # noqa: BLE001 - report, do not crash the table
        results[f"torch.compile (failed: {type(err).__name__})"] = float("nan")
    for name, value in results.items():
        rows.append(
            (
                f"ConvNet train images/s with {name} (plain loop)",
                "",
                f"{value:,.0f}",
                f"{value / base:.2f}× fp32 ({base:,.0f})",
            )
        )


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    # First, while this process is small: a child inherits its parent's RSS high-water mark
    # across fork and exec, so later children would report this process's peak, not theirs.
    end_to_end()
    import_costs()
    time_to_error_line()
    host_rows(rows)  # the framework's own host ms and stalling reads per step, tiny MLP
    # The ConvNet rows time the default recipe's length: per-run work (the last epoch's
    # Grad-CAM and diagnostics) weighs what it weighs in `make train`, and a 2-epoch window hid
    # a steady-state step gap (docs/performance.md). MLflow's cost is read over 2 epochs.
    epochs = int(compose().trainer.max_epochs)
    convnet = throughput(
        f"ConvNet / MNIST sample, the recipe's {epochs} epochs", f"trainer.max_epochs={epochs}"
    )
    noise_floor(f"the {epochs}-epoch rows", f"trainer.max_epochs={epochs}")
    mlflow_cost("trainer.max_epochs=2")
    noise_floor("the 2-epoch MLflow row", "trainer.max_epochs=2")
    resnet_overrides = (
        "model=resnet18",
        "data=fake",
        "data.image_size=32",
        "data.source.num_samples=512",
        "data.batch_size=128",
        "trainer.max_epochs=2",
        "augment=cifar",
    )
    # 460 synthetic images per epoch: 4 steps between checkpoints (CIFAR-10 has 390), so the
    # whole-fit row is dominated by epoch-end work; the steps-only row is the training speed.
    resnet = throughput("ResNet-18 / 3×32×32", *resnet_overrides, project_epoch=50_000)
    data_pipeline("MNIST sample + augment=mnist", convnet, "augment=mnist")
    data_pipeline(
        "3×32×32 in memory + augment=cifar",
        resnet,
        "data=fake",
        "data.image_size=32",
        "data.source.num_samples=4096",
        "augment=cifar",
    )
    decode_rows()
    peak = matmul_peak()
    for name, rate, overrides in (
        ("ConvNet", convnet, ()),
        ("ResNet-18", resnet, resnet_overrides),
    ):
        flops = train_flops_per_image(*overrides)
        rows.append(
            (
                f"model FLOP utilisation, {name} (train FLOPs/s ÷ fp32 matmul peak "
                f"{peak / 1e9:,.0f} GFLOP/s)",
                f"{rate * flops / peak:.1%}",
                "",
                "",
            )
        )
    knobs()
    inference_rows()
    int8_rows()
    probe_cache_rows()
    machine = (
        f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    table = [
        f"Machine: {machine}; {REPS} repetitions, median (min–max); bench took "
        f"{time.perf_counter() - started:.0f} s",
        "",
        "| measure | cnnlab | plain PyTorch loop | ratio |",
        "|---|---|---|---|",
    ]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = "\n".join(table)
    print(text)
    if os.environ.get("SAVE"):
        out = REPO / "benchmarks" / "results" / f"{platform.node() or 'machine'}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()

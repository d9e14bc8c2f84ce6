"""`make bench`: cnnlab against a plain PyTorch loop, measured in the same run, with ratios.

Rows: training images/s (ConvNet on the MNIST sample, ResNet-18 on CIFAR-shaped data) with the
full default callbacks; end-to-end wall time of the default `make train` recipe vs the plain
loop script (start-up included) and time to the first step; data pipeline vs model consumption;
model FLOP utilisation against the fp32 matmul peak measured here; peak memory; the effect of
channels_last, bf16 autocast and torch.compile. `SAVE=1` writes benchmarks/results/<machine>.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_common import REPS, compose, rows, stats  # noqa: E402
from benchmarks.plain_loop import loop  # noqa: E402
from benchmarks.startup import end_to_end, import_costs  # noqa: E402
from benchmarks.timing import FitTimer  # noqa: E402


def cnnlab_fit(*overrides: str, steps_only: bool = False) -> tuple[float, int, object]:
    """Seconds from the start of training to the end of fit (or, steps_only, the training steps
    alone: no validation, checkpoints or epoch-end callbacks), training images, datamodule."""
    from cnnlab import build
    from cnnlab.train import train

    timer = FitTimer()
    original = build.callbacks
    build.callbacks = lambda cfg: [*original(cfg), timer]
    try:
        cfg = compose("test=false", *overrides)
        _, objs = train(cfg)
    finally:
        build.callbacks = original
    dm = objs["datamodule"]
    seconds = timer.train_seconds if steps_only else timer.fit_seconds
    return seconds, len(dm.train_set) * cfg.trainer.max_epochs, dm


def plain_fit(dm, net, cfg, steps_only: bool = False) -> float:
    """The plain loop on the same tensors, network, optimizer, schedule and memory format."""
    return loop(
        net,
        dm.train_set.images,
        dm.train_set.targets,
        dm.val_set.images,
        dm.val_set.targets,
        epochs=cfg.trainer.max_epochs,
        batch_size=cfg.data.batch_size,
        lr=cfg.optimizer.lr,
        mean=dm.mean,
        std=dm.std,
        augment=dm.batch_augment,
        channels_last=cfg.channels_last,
        label_smoothing=cfg.label_smoothing,
    )["train_seconds" if steps_only else "seconds"]


def throughput(name: str, *overrides: str, steps_only: bool = False) -> float:
    from cnnlab import build

    ours, theirs = [], []
    for rep in range(REPS):
        seconds, images, dm = cnnlab_fit(f"seed={rep}", *overrides, steps_only=steps_only)
        ours.append(images / seconds)
        cfg = compose(*overrides)
        torch.manual_seed(rep)
        net = build.network(cfg.model, cfg.data)
        theirs.append(images / plain_fit(dm, net, cfg, steps_only=steps_only))
    what = "training steps only" if steps_only else "whole fit incl. validation and epoch-end work"
    rows.append(
        (
            f"train images/s, {name} ({what})",
            stats(ours),
            stats(theirs),
            f"{statistics.median(ours) / statistics.median(theirs):.3f}",
        )
    )
    return statistics.median(ours)


def data_pipeline(name: str, model_rate: float, *overrides: str) -> None:
    from cnnlab import build

    dm = build.datamodule(compose(*overrides).data)
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

    from cnnlab import build

    cfg = compose(*overrides)
    net = build.network(cfg.model, cfg.data)
    x = torch.randn(8, cfg.data.in_channels, cfg.data.input_size, cfg.data.input_size)
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
    convnet = throughput("ConvNet / MNIST sample", "trainer.max_epochs=3")
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
    throughput("ResNet-18 / 3×32×32", *resnet_overrides)
    resnet = throughput("ResNet-18 / 3×32×32", *resnet_overrides, steps_only=True)
    data_pipeline("MNIST sample + augment=mnist", convnet, "augment=mnist")
    data_pipeline(
        "3×32×32 in memory + augment=cifar",
        resnet,
        "data=fake",
        "data.image_size=32",
        "data.source.num_samples=4096",
        "augment=cifar",
    )
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
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
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

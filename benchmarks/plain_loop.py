"""The competitor: the plain PyTorch loop a user could write instead of cnnlab, on the same
network, data tensors, optimizer, schedule, batch size and threads. Run as a script, timed by
bench.py through its bench_mark lines: end to end (start-up and imports included), `python
benchmarks/plain_loop.py --epochs 10`, and the throughput rows on cnnlab's data and network,
`python benchmarks/plain_loop.py --cnnlab model=resnet18 data=fake …` (Hydra overrides)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn


def loop(
    net: nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    mean: float,
    std: float,
    augment=None,
    mark=lambda name: None,
    channels_last: bool = False,
    label_smoothing: float = 0.0,
    fused: bool = False,
) -> float:
    """Train (AdamW + one-cycle, cross-entropy), validate after every epoch; uint8 inputs.
    `mark(name)` is called at the moments cnnlab's FitTimer marks (benchmarks/timing.py)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01, fused=fused)
    steps = epochs * ((len(train_x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    first = True
    mark("fit_start")
    for _ in range(epochs):
        mark("epoch_start")
        net.train()
        order = torch.randperm(len(train_x))
        for i in range(0, len(order), batch_size):
            if first:
                mark("first_step")
                first = False
            idx = order[i : i + batch_size]
            x = train_x[idx].float().div_(255)
            if augment is not None:
                x = augment(x)
            x = ((x - mean) / std).contiguous(memory_format=fmt)
            loss = loss_fn(net(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        mark("steps_end")
        net.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(val_x), 500):
                x = (val_x[i : i + 500].float().div_(255) - mean) / std
                x = x.contiguous(memory_format=fmt)
                correct += int((net(x).argmax(1) == val_y[i : i + 500]).sum())
    mark("fit_end")
    return correct / len(val_x)  # validation accuracy after the last epoch


def mark(name: str) -> None:
    """As benchmarks/timing.py (not imported: it would import Lightning into the plain loop)."""
    print(f"bench_mark {name} {time.time():.6f}", flush=True)


def on_cnnlab_data(overrides: list[str]) -> None:
    """The throughput rows: cnnlab's datamodule tensors and network for these overrides, the
    loop's own training and validation. Imports here are outside the timed fit."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_common import compose
    from cnnlab.training import build

    cfg = compose(*overrides)
    torch.manual_seed(cfg.seed)
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    dm.setup("fit")
    net = build.network(cfg.model, build.preprocessing(cfg))
    print(f"bench_images {len(dm.train_set) * cfg.trainer.max_epochs}")
    loop(
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
        channels_last=cfg.module.channels_last,
        label_smoothing=cfg.module.label_smoothing,
        fused=bool(cfg.optimizer.get("fused", False)),  # the same optimizer kernel as cnnlab's
        mark=mark,
    )


def main() -> None:
    start = time.perf_counter()
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)  # the default recipe's
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--cnnlab", nargs="*", metavar="OVERRIDE", help="on cnnlab's data/net")
    args = parser.parse_args()
    if args.cnnlab is not None:
        return on_cnnlab_data(args.cnnlab)
    from cnnlab.data.augment import RandomAffine
    from cnnlab.data.sources import mnist_sample
    from cnnlab.models.convnet import ConvNet

    torch.manual_seed(42)
    data = mnist_sample("data")
    g = torch.Generator().manual_seed(42)
    order = torch.randperm(len(data.train), generator=g)
    train = order[400:]  # the first 400 are cnnlab's validation images: not trained on
    net = ConvNet(in_channels=1, num_classes=10, image_size=28)
    test_x, test_y = data.test.images, data.test.targets
    print(f"bench_images {len(train) * args.epochs}")
    test_acc = loop(
        net,
        data.train.images[train],
        data.train.targets[train],
        test_x,
        test_y,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        mean=0.1307,
        std=0.3081,
        augment=RandomAffine(),
        channels_last=not args.no_channels_last,
        label_smoothing=args.label_smoothing,
        mark=mark,
    )
    print(f"test_acc={test_acc:.4f} total_s={time.perf_counter() - start:.2f}")


if __name__ == "__main__":
    main()

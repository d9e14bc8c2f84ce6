"""The GPU check (issue 18), one command on a CUDA machine, ≤ 8 minutes:
`bash benchmarks/gpu_check.sh` (CPU dry run with tiny sizes: `--dry-run`, tested in CI).

1. ResNet-50 training images/s, cnnlab (`make train` with model=resnet50) against a plain PyTorch
   AMP loop on the same synthetic batches, at 32-true, 16-mixed and bf16-mixed with channels_last,
   and bf16-mixed without it; steps timed after a warm-up, CUDA synchronised.
2. The data pipeline from shards (photo-like JPEGs, 500×375): images/s of data=shards' training
   loader with CPU decoding (all cores) and with `data.decode=gpu` (nvJPEG).
3. With several GPUs, DDP over all of them (trainer=ddp) at bf16-mixed.
4. cnnlab's `trainer=gpu` defaults (precision=mixed, channels_last, fused SGD) against the plain
   fp32 loop, and the CUDA syncs per training step that logs nothing (want 0).
cnnlab's runs use `callbacks=[none,nonfinite]`: no progress bar, the guard on.

Prints a Markdown table with the card's name and writes it to benchmarks/results/gpu_check.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class StepRate(L.Callback):
    """Images/s over the training steps after `warmup` steps, CUDA synchronised; written to
    `out` (one number per rank) when training ends."""

    def __init__(self, out: str, warmup: int = 10):
        self.out, self.warmup = out, warmup
        self.start, self.images, self.elapsed = 0.0, 0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            _sync()
            self.start, self.images = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.warmup:
            self.images += len(batch[1])
        if batch_idx == trainer.num_training_batches - 1:  # the clock stops before validation
            _sync()  # and the epoch's checkpoint, which the plain loop does not do
            self.elapsed = time.perf_counter() - self.start

    def on_train_end(self, trainer, pl_module) -> None:
        rate = self.images / self.elapsed
        with open(f"{self.out}.rank{trainer.global_rank}", "w") as f:
            f.write(f"{rate}\n")


class SyncCount(L.Callback):
    """Synchronising CUDA calls per training step that logs nothing, after `warmup` steps
    (`torch.cuda.set_sync_debug_mode("warn")` warns at each one); the mean per quiet step is
    written to `out`. 0 on a CPU, where nothing synchronises."""

    def __init__(self, out: str, warmup: int = 10):
        self.out, self.warmup, self.counts = out, warmup, []
        self._caught = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.warmup and torch.cuda.is_available():
            import warnings

            self._caught = warnings.catch_warnings(record=True)
            self._seen = self._caught.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._caught is None:
            return
        torch.cuda.set_sync_debug_mode(0)
        self._caught.__exit__(None, None, None)
        self._caught = None
        from cnnlab.callbacks.nonfinite import host_reads_anyway

        if not host_reads_anyway(trainer, batch_idx):
            self.counts.append(sum("synchroniz" in str(w.message) for w in self._seen))

    def on_train_end(self, trainer, pl_module) -> None:
        mean = sum(self.counts) / len(self.counts) if self.counts else 0.0
        with open(f"{self.out}.rank{trainer.global_rank}", "w") as f:
            f.write(f"{mean}\n")


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _cnnlab(size: Sizes, precision: str, channels_last: bool, extra=(), tmp: Path = None) -> float:
    """One training child (a fresh process, as a user runs it): images/s summed over its
    ranks."""
    out = tmp / f"rate-{precision}-{channels_last}-{len(list(tmp.glob('rate-*')))}"
    steps = size.warmup + size.steps
    args = [
        "model=resnet50", "data=fake", f"data.image_size={size.image}", "data.in_channels=3",
        f"data.source.num_samples={steps * size.batch}", "data.source.num_test=8",
        "data.source.in_channels=3", f"data.source.image_size={size.image}",
        f"data.batch_size={size.batch}", "data.val_fraction=0.01", "augment=none",
        "optimizer=sgd", "scheduler=none", "callbacks=[none,nonfinite]", "logger=none",
        "test=false",
        f"trainer={size.trainer}", "trainer.max_epochs=1", "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0", f"trainer.precision={precision}",
        f"module.channels_last={str(channels_last).lower()}", "callbacks.nonfinite.policy=skip",
        "callbacks.nonfinite.max_skips=1000", f"paths.output_dir={tmp / out.name}",
        "+callbacks.rate._target_=benchmarks.gpu_check.StepRate", f"+callbacks.rate.out={out}",
        f"+callbacks.rate.warmup={size.warmup}", *extra,
    ]  # fmt: skip
    # the repo first, then the caller's path (where its packages may live)
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "CNNLAB_DATA": str(tmp / "data")}
    proc = subprocess.run([sys.executable, "-m", "cnnlab.commands.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"cnnlab.commands.train failed ({precision}):\n{proc.stderr[-3000:]}")
    return sum(float(p.read_text()) for p in tmp.glob(f"{out.name}.rank*"))


def _plain(size: Sizes, precision: str, channels_last: bool, device: torch.device) -> float:
    """The plain loop a user would write: torchvision's resnet50, SGD, autocast + GradScaler."""
    from torchvision.models import resnet50

    torch.manual_seed(0)
    net = resnet50(num_classes=10).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    # uint8 batches in host memory, copied every step, as cnnlab's in-memory data are
    x = torch.randint(0, 256, (size.batch, 3, size.image, size.image), dtype=torch.uint8)
    y = torch.randint(0, 10, (size.batch,))
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    start = 0.0
    for step in range(size.warmup + size.steps):
        if step == size.warmup:
            _sync()
            start = time.perf_counter()
        batch, target = x.to(device), y.to(device)
        inputs = ((batch.float() / 255 - mean) / std).contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(net(inputs), target)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    _sync()
    return size.steps * size.batch / (time.perf_counter() - start)


def _pipeline(size: Sizes, tmp: Path, decode: str, workers: int) -> float:
    """Images/s of data=shards' training loader (decode + crop 224 + flip), over one epoch after
    the first batch; with decode=gpu the batches are decoded where the trainer would."""
    from benchmarks.bench_common import compose
    from cnnlab.data import decode as decoding
    from cnnlab.training import build

    cfg = compose(
        "data=shards", f"data.source.root={tmp / 'shards'}", "data.num_classes=6",
        f"data.image_size={size.crop}", f"data.batch_size={size.batch}",
        f"data.num_workers={workers}", f"data.decode={decode}", "augment=none",
        "+augment.sample={_target_: cnnlab.data.policies.policy, name: none, hflip: true}",
        "+augment.train_crop={_target_: cnnlab.data.policies.train_crop, image_size: "
        f"{size.crop}}}",
    )  # fmt: skip
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    dm.setup("fit")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rates = []
    for _ in range(2):  # the first pass warms the workers and the page cache
        # The last pass's loader iterator sits in a reference cycle: collected now, not in the
        # next pass's forked workers, whose copy's __del__ fails LitData's "can only test a
        # child process" assertion (seen on the H200: 4 tracebacks per run).
        gc.collect()
        n, start = 0, None
        for images, _targets in dm.train_dataloader():
            if isinstance(images, list):
                images = decoding.gpu_batch(images, size.crop, dm.sample_augment, device)
            _sync()
            if start is None:
                start = time.perf_counter()
                continue
            n += len(images)
        rates.append(n / (time.perf_counter() - start))
    return rates[-1]


class _Rows(list):
    """The table's rows, each printed as soon as it is measured (a run cut short keeps them)."""

    def append(self, row: tuple) -> None:
        super().append(row)
        print("| " + " | ".join(row) + " |", flush=True)


class Sizes:
    def __init__(self, dry: bool):
        self.dry = dry
        self.image = 32 if dry else 224  # training throughput: pixels per side
        self.batch = 4 if dry else 128
        self.warmup, self.steps = (2, 3) if dry else (10, 40)
        self.corpus = 32 if dry else 2000  # JPEGs for the pipeline rows
        self.crop = 32 if dry else 224
        self.trainer = "cpu" if dry else "gpu"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (CI)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_check.md"))
    args = parser.parse_args(argv)
    size = Sizes(args.dry_run)
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device; run with --dry-run for the CPU check")
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU (dry run)"
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    started = time.perf_counter()
    rows = _Rows()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        precisions = (
            [("32-true", True), ("bf16-mixed", True)]
            if args.dry_run
            else [
                ("32-true", True),
                ("16-mixed", True),
                ("bf16-mixed", True),
                ("bf16-mixed", False),
            ]  # fmt: skip
        )
        measured = {}  # (precision, channels_last) → cnnlab's images/s
        plain = {}  # the same for the plain loop
        for precision, cl in precisions:
            ours = measured[precision, cl] = _cnnlab(size, precision, cl, tmp=tmp)
            theirs = plain[precision, cl] = _plain(size, precision, cl, device)
            layout = "channels_last" if cl else "contiguous"
            rows.append((f"ResNet-50 training images/s, {precision}, {layout}, batch "
                         f"{size.batch} at {size.image} px", f"{ours:,.0f}", f"{theirs:,.0f}",
                         f"{ours / theirs:.2f}"))  # fmt: skip
        # What the non-finite guard costs now that its flags stay on the device (it read two
        # flags back per step before: 0.80 of the plain loop with it off, H200).
        unguarded = _cnnlab(size, "bf16-mixed", True, ("callbacks.nonfinite=null",), tmp=tmp)
        rows.append(("the same, bf16-mixed, channels_last, callbacks.nonfinite=null (no non-finite "
                     "guard)", f"{unguarded:,.0f}", f"{plain['bf16-mixed', True]:,.0f}",
                     f"{unguarded / plain['bf16-mixed', True]:.2f}"))  # fmt: skip
        # The fast defaults a user gets from trainer=gpu (mixed precision for the card,
        # channels_last, fused SGD, pinned batches) against the plain fp32 loop a user writes.
        fast = _cnnlab(size, "mixed", True, tmp=tmp)
        fp32 = plain.get(("32-true", False)) or _plain(size, "32-true", False, device)
        rows.append(("cnnlab trainer=gpu defaults (precision=mixed, channels_last, fused SGD) "
                     "vs the plain loop at 32-true, contiguous", f"{fast:,.0f}", f"{fp32:,.0f}",
                     f"{fast / fp32:.2f}"))  # fmt: skip
        # Host syncs between logging steps (what makes a GPU wait for the CPU): want 0.
        syncs = _cnnlab(size, "bf16-mixed", True, ("+callbacks.syncs._target_="
                        "benchmarks.gpu_check.SyncCount", f"+callbacks.syncs.out={tmp}/syncs",
                        f"+callbacks.syncs.warmup={size.warmup}"), tmp=tmp)  # fmt: skip
        per_step = float(next(tmp.glob("syncs.rank0")).read_text())
        rows.append(
            (
                "CUDA syncs per training step that logs nothing (set_sync_debug_mode), bf16-mixed",
                f"{per_step:.2f}",
                "0",
                f"({syncs:,.0f} images/s)",
            )
        )
        from cnnlab.data import photo_corpus
        from cnnlab.data.shards import write_split

        photo_corpus.write(tmp / "corpus", {"train": size.corpus, "val": 6})
        workers = max(1, (os.cpu_count() or 2) - 1)
        for split in ("train", "val"):
            write_split(tmp / "corpus" / split, tmp / "shards" / split, workers=workers)
        loader_workers = 0 if args.dry_run else workers
        cpu = _pipeline(size, tmp, "auto", loader_workers)
        gpu = _pipeline(size, tmp, "gpu", loader_workers)
        rows.append((f"data=shards pipeline images/s (500×375 JPEG → crop {size.crop} + flip), "
                     f"{loader_workers} workers: CPU decode vs data.decode=gpu", f"{cpu:,.0f}",
                     f"{gpu:,.0f}", f"{gpu / cpu:.2f}"))  # fmt: skip
        if gpus > 1:
            ddp = _cnnlab(size, "bf16-mixed", True, ("trainer=ddp",), tmp=tmp)
            single = measured["bf16-mixed", True]
            rows.append((f"DDP over {gpus} GPUs, bf16-mixed, channels_last, batch {size.batch} "
                         f"per GPU", f"{ddp:,.0f}", f"{single:,.0f} (1 GPU)",
                         f"{ddp / single / gpus:.2f} of linear"))  # fmt: skip
        else:
            rows.append(("DDP", "not measured: one GPU" if gpus else "not measured: no GPU",
                         "", ""))  # fmt: skip
    table = [
        f"GPU check on {card}; torch {torch.__version__}; {os.cpu_count()} CPU cores; "
        f"{time.perf_counter() - started:.0f} s",
        "",
        "| measure | cnnlab | plain PyTorch loop (pipeline: GPU decode) | ratio |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
    ]
    text = "\n".join(table)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()

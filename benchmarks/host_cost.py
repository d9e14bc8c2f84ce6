"""The framework's own cost per training step, visible on any machine: host CPU milliseconds per
step (the main thread's CPU time, not wall time) and host reads that would stall a GPU, for a
tiny network where the arithmetic is negligible.

Five contestants, each in a fresh process, taking turns (interleaved rounds, median of rounds):
cnnlab's default recipe (its callbacks, logger, non-finite guard, schedule and fused AdamW) on a
tiny MLP over in-memory 8×8 images; cnnlab stripped (`callbacks=none logger=none`: the non-finite
guard off too); a bare LightningModule under a bare Trainer, once with plain cross-entropy and one
AdamW group, once with the default recipe's own arithmetic written by hand (label smoothing 0.1,
channels_last input, backbone and head weights and biases in four AdamW groups, the one-cycle
schedule stepped every step); the plain PyTorch loop. Same network shape, data, batch and optimizer
(fused AdamW) everywhere; no augmentation (data loading is not the framework's cost).

The recipe's arithmetic is not the framework's cost (on this tiny network label smoothing alone
doubles the loss's forward and backward time), so the gate compares cnnlab's default with the
bare LightningModule that does the same arithmetic; the row against the plain bare module shows
what the recipe itself costs.

`python benchmarks/host_cost.py` prints the rows alone; `make bench` includes them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROUNDS = int(os.environ.get("HOST_COST_ROUNDS", "5"))
SAMPLES, BATCH, SIDE, EPOCHS = 4096, 32, 8, 2  # 115 steps an epoch (10 % held out)
WARMUP = 10  # steps left out of each epoch: first-step allocations and the loader's start
TINY = ["data=fake", f"data.source.num_samples={SAMPLES}", "data.source.num_test=64",
        "data.in_channels=1", f"data.image_size={SIDE}", f"data.batch_size={BATCH}",
        "model=mlp", "model.net.hidden=64", "augment=none", "test=false", "eval_report=false",
        f"trainer.max_epochs={EPOCHS}", "trainer.accelerator=cpu", "trainer.devices=1"]  # fmt: skip
STRIPPED = ["callbacks=none", "logger=none"]  # the non-finite guard is a callback too
SAME_RECIPE = "bare LightningModule, same recipe"
CONTESTANTS = ("cnnlab default", "cnnlab stripped", "bare LightningModule", SAME_RECIPE,
               "plain loop")  # fmt: skip


def _summary(per_step_ns: list[int], stalling: list[int]) -> dict:
    return {"ms": statistics.median(per_step_ns) / 1e6,
            "stalling": statistics.mean(stalling) if stalling else 0.0}  # fmt: skip


class StepClock:
    """Main-thread CPU time between consecutive training steps, past each epoch's first WARMUP
    steps; with COUNT_READS set, stalling reads per quiet step instead (tests/host_reads.py:
    its patched Tensor methods cost host time, so the two are never measured in one run)."""

    def __init__(self):
        from tests.host_reads import HostReads

        self.counting = bool(os.environ.get("COUNT_READS"))
        self.reads = HostReads() if self.counting else _NoReads()
        self.times: list[int] = []
        self._last: int | None = None

    def tick(self, batch_idx: int) -> None:
        now = time.thread_time_ns()
        if self._last is not None and batch_idx > WARMUP:
            self.times.append(now - self._last)
        self._last = now if batch_idx >= WARMUP else None

    def result(self) -> dict:
        quiet = [len(s.stalling) for s in self.reads.steps if not s.logs]
        return _summary(self.times, quiet)


class _NoReads:
    """HostReads' hooks, doing nothing (a timing run)."""

    steps: list = []
    _current = None

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _lightning_clock():
    import lightning as L

    class Clock(L.Callback):
        def __init__(self, out: str):
            self.out, self.clock = out, StepClock()

        def on_train_start(self, trainer, pl_module):
            self.clock.reads.on_train_start(trainer, pl_module)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.clock.tick(batch_idx)
            self.clock.reads.on_train_batch_start(trainer, pl_module, batch, batch_idx)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.clock.reads.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

        def on_train_epoch_end(self, trainer, pl_module):
            self.clock.reads.on_train_epoch_end(trainer, pl_module)
            self.clock._last = None

        def on_validation_start(self, trainer, pl_module):
            self.clock.reads.on_validation_start(trainer, pl_module)

        def on_train_end(self, trainer, pl_module):
            self.clock.reads.on_train_end(trainer, pl_module)
            Path(self.out).write_text(json.dumps(self.clock.result()))

    return Clock


def _tensors():
    """The same in-memory images and labels the cnnlab runs get (data=fake, same seed)."""
    from benchmarks.bench_common import compose
    from cnnlab.training import build

    _, datamodule, _ = build.data_and_network(compose(*TINY))
    datamodule.setup("fit")
    return datamodule.train_dataloader()


def _inputs(images):
    """uint8 batches to the network's input, as cnnlab's preprocessing does (data=fake's
    mean 0.5, std 0.25)."""
    return (images.float() / 255 - 0.5) / 0.25


def _net():
    import torch

    # cnnlab's model=mlp with hidden=64 at 8×8×1: flatten, fc-64, ReLU, fc-10
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(SIDE * SIDE, 64),
                               torch.nn.ReLU(), torch.nn.Linear(64, 10))  # fmt: skip


def _recipe_optimizer(net, total_steps: int) -> dict:
    """The default recipe's optimizer by hand: fused AdamW over cnnlab's four groups (backbone
    and head, each with and without weight decay: training/param_groups.py), the one-cycle
    schedule of conf/scheduler/onecycle.yaml stepped every step."""
    import torch

    *backbone, head = [m for m in net if isinstance(m, torch.nn.Linear)]
    groups = [{"params": [m.weight for m in part], "weight_decay": 0.01} for part in (backbone,
              [head])] + [{"params": [m.bias for m in part], "weight_decay": 0.0}
                          for part in (backbone, [head])]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=5e-3, fused=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=total_steps,
                                                   pct_start=0.25, div_factor=25.0,
                                                   final_div_factor=1e4)  # fmt: skip
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def child(name: str, out: str) -> None:
    import torch

    torch.manual_seed(0)
    if name.startswith("cnnlab"):
        from benchmarks.bench_common import compose
        from cnnlab.commands.train import train

        extra = STRIPPED if name == "cnnlab stripped" else []
        train(compose(*TINY, *extra, "+callbacks.clock._target_=benchmarks.host_cost.Clock",
                      f"+callbacks.clock.out={out}"))  # fmt: skip
        return
    loader = _tensors()
    net = _net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=0.01, fused=True)
    if name == "plain loop":
        from tests.host_reads import Step

        clock = StepClock()
        if clock.counting:
            clock.reads._patch()
        for _ in range(EPOCHS):
            clock._last = None
            for batch_idx, (images, targets) in enumerate(loader):
                clock.tick(batch_idx)
                if clock.counting:
                    clock.reads._current = Step(batch_idx)
                    clock.reads.steps.append(clock.reads._current)
                optimizer.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(_inputs(images)), targets)
                loss.backward()
                optimizer.step()
            clock.reads._current = None
        if clock.counting:
            clock.reads._unpatch()
        Path(out).write_text(json.dumps(clock.result()))
        return
    import lightning as L

    recipe = name == SAME_RECIPE

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net

        def training_step(self, batch, batch_idx):
            images, targets = batch
            x = _inputs(images)
            if recipe:
                x = x.contiguous(memory_format=torch.channels_last)
            smoothing = 0.1 if recipe else 0.0
            return torch.nn.functional.cross_entropy(
                self.net(x), targets, label_smoothing=smoothing
            )

        def configure_optimizers(self):
            if not recipe:
                return optimizer
            return _recipe_optimizer(net, int(self.trainer.estimated_stepping_batches))

    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=EPOCHS, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False,
                        callbacks=[_lightning_clock()(out)])  # fmt: skip
    trainer.fit(Bare(), train_dataloaders=loader)


def __getattr__(name):  # Hydra's benchmarks.host_cost.Clock: Lightning loads in children only
    if name == "Clock":
        return _lightning_clock()
    raise AttributeError(name)


def measure(rounds: int, count_reads: bool = False) -> dict[str, list[dict]]:
    """Interleaved rounds of the contestants, each a fresh process."""
    results: dict[str, list[dict]] = {name: [] for name in CONTESTANTS}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "COUNT_READS": "1" if count_reads else "",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for i, name in enumerate(CONTESTANTS):
                out = Path(tmp) / f"{r}-{i}.json"
                proc = subprocess.run([sys.executable, __file__, "child", name, str(out)],
                                      cwd=tmp, env=env, capture_output=True, text=True)  # fmt: skip
                if proc.returncode != 0:
                    raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
                results[name].append(json.loads(out.read_text()))
    return results


def host_rows(rows: list) -> None:
    results, counted = measure(ROUNDS), measure(1, count_reads=True)
    ms = {n: [r["ms"] for r in results[n]] for n in CONTESTANTS}
    med = {n: statistics.median(v) for n, v in ms.items()}
    for name in CONTESTANTS:
        spread = f"{med[name]:.2f} ({min(ms[name]):.2f}–{max(ms[name]):.2f})"
        rows.append((f"host CPU ms per training step, tiny MLP, {name} (thread time, {ROUNDS} "
                     f"interleaved rounds)", spread if name != "plain loop" else "",
                     spread if name == "plain loop" else "",
                     f"+{med[name] - med['plain loop']:.2f} ms vs plain"
                     if name != "plain loop" else ""))  # fmt: skip
    gap = med["cnnlab default"] - med[SAME_RECIPE]
    rows.append(("cnnlab default − bare LightningModule with the same recipe, host ms per step "
                 "(gate: ≤ +0.5)", f"{gap:+.2f}", "", ""))  # fmt: skip
    recipe = med[SAME_RECIPE] - med["bare LightningModule"]
    rows.append(("the recipe's own arithmetic (label smoothing, four groups, one-cycle), host ms "
                 "per step: bare same recipe − bare plain", f"{recipe:+.2f}", "", ""))  # fmt: skip
    for name in CONTESTANTS:
        stall = statistics.mean(r["stalling"] for r in counted[name])
        rows.append((f"stalling host reads per quiet training step, {name}", f"{stall:.2f}",
                     "", ""))  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3])
    else:
        from benchmarks.bench_common import rows

        host_rows(rows)
        print("| measure | cnnlab | plain PyTorch loop | difference |\n|---|---|---|---|")
        print("\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows))

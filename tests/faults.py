"""Fault injection for the reliability tests: callbacks that kill or signal the process at an
exact training step (deterministic: no sleeps, no timing)."""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAt(L.Callback):
    """Send `signal_name` to this process when training reaches `step` (a global step); with
    `job`, only in that job of a multirun; with `once` (a file path), only the first time, so
    the very same command can be run again to resume."""

    def __init__(
        self,
        step: int | None = None,
        signal_name: str = "SIGKILL",
        job: int | None = None,
        rank: int = 0,
        once: str | None = None,
        epoch: int | None = None,  # instead of `step`: at the first batch of this epoch
        to_parent: bool = False,  # the process that started this one (make lecture's)
    ):
        self.step, self.job, self.rank, self.once, self.epoch = step, job, rank, once, epoch
        self.signal = getattr(signal, signal_name)
        self.to_parent = to_parent

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_rank != self.rank:  # DDP: only that process
            return
        if self.job is not None:
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.get().job.num != self.job:
                return
        at_epoch = self.epoch is not None and (trainer.current_epoch, batch_idx) == (self.epoch, 0)
        if trainer.global_step == self.step or at_epoch:
            if self.once is not None:
                if os.path.exists(self.once):
                    return
                open(self.once, "w").close()
            os.kill(os.getppid() if self.to_parent else os.getpid(), self.signal)


class RaiseAt(L.Callback):
    """Raise at `step`; with `once` (a file path), only the first time (see SignalAt)."""

    def __init__(self, step: int, message: str = "disk on fire", once: str | None = None):
        self.step, self.message, self.once = step, message, once

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            if self.once is not None:
                if os.path.exists(self.once):
                    return
                open(self.once, "w").close()
            raise RuntimeError(self.message)


class StopAfterEpoch(L.Callback):
    """Stop cleanly after `epoch` (0-based), as an interrupted job would have been."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


class NanGradAt(L.Callback):
    """Poison one parameter's gradient after backward at `step`s (loss stays finite)."""

    def __init__(self, steps: list[int]):
        self.steps = set(steps)

    def on_after_backward(self, trainer, pl_module) -> None:
        if trainer.global_step in self.steps:
            next(p for p in pl_module.parameters() if p.grad is not None).grad.fill_(float("nan"))


class NanLossAt(L.Callback):
    """Make the network's output, hence the loss, NaN at the given global steps (with `job`,
    only in that job of a multirun)."""

    def __init__(self, steps: list[int], job: int | None = None):
        self.steps, self.poison = set(steps), False
        if job is not None:
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.get().job.num != job:
                self.steps = set()

    def on_train_start(self, trainer, pl_module) -> None:
        pl_module.net.register_forward_hook(
            lambda module, args, out: out * float("nan") if self.poison else out
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.poison = trainer.global_step in self.steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.poison = False


class DeleteCheckpointsAt(L.Callback):
    """Delete the run's checkpoint folder when training reaches `step` (someone cleaning up)."""

    def __init__(self, step: int, dirpath: str):
        self.step, self.dirpath = step, dirpath

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            import shutil

            shutil.rmtree(self.dirpath)


class PauseAt(L.Callback):
    """Stop at training `step` until told to go on: writes `step <n>` to the `reached` FIFO, then
    waits for a line on the `proceed` FIFO (a test inspects or races the run meanwhile)."""

    def __init__(self, step: int, reached: str, proceed: str):
        self.step, self.reached, self.proceed = step, reached, proceed

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            handshake(self.reached, self.proceed, f"step {self.step}")


def handshake(reached: str, proceed: str, where: str) -> None:
    with open(reached, "w") as fifo:  # blocks until the test opens it to read
        fifo.write(where + "\n")
    with open(proceed) as fifo:
        fifo.readline()


# A command run with an import gate: the process stops just before its first `import torch`
# (after Hydra has composed and taken or refused the run folder), tells the `reached` FIFO,
# and goes on when the `proceed` FIFO gets a line. With GATE_REFUSE=1 instead, importing torch
# fails: a command that must refuse before torch proves it never got there.
IMPORT_GATE = """
import importlib.abc, os, runpy, sys
class Gate(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        if os.environ.get("GATE_REFUSE"):
            raise ImportError("the import gate: torch was imported")
        with open(os.environ["GATE_REACHED"], "w") as fifo:
            fifo.write("torch\\n")
        with open(os.environ["GATE_PROCEED"]) as fifo:
            fifo.readline()
        return None
sys.meta_path.insert(0, Gate())
entry = sys.argv.pop(1)
sys.argv[0] = entry
runpy.run_module(entry, run_name="__main__", alter_sys=True)
"""


class ReadEveryStep(L.Callback):
    """A host read of a value in every training step (what the host-read counter must catch)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        next(pl_module.parameters()).sum().item()


class KillInTest(L.Callback):
    """SIGKILL this process at the first batch of the end-of-training test, the first time only
    (`once`, a file path): the same command, run again, finds a finished fit without its test."""

    def __init__(self, once: str):
        self.once = once

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not os.path.exists(self.once):
            open(self.once, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


class SignalOnBuild(L.Callback):
    """Send `signal_name` to this process while the callback is built, in sweep job `job`: a
    signal while a job is starting, before anything trains."""

    def __init__(self, job: int, signal_name: str = "SIGTERM"):
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.get().job.num == job:
            os.kill(os.getpid(), getattr(signal, signal_name))

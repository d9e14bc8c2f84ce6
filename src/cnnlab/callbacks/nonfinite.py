"""The non-finite guard: a NaN/Inf loss or gradient never changes the weights. `policy: stop`
ends training with exit 1 naming the first bad step; `policy: skip` skips up to `max_skips` such
batches and stops at the next.

With a fused optimizer (Adam, AdamW, SGD with `fused: true`, cnnlab's default) the guard never
asks the device for a value during a step: the bad-step flag goes to the optimizer as `found_inf`,
the tensor `torch.amp.GradScaler` hands fused optimizers, so the step leaves every weight and
optimizer state (step counts included) as it was, on the device. Each step's flag and health
(|loss| and every gradient's norm) stay on the device in a short list, read where the host reads
anyway: on logging steps, at an epoch's end, before a checkpoint is written, and at the latest
every `PENDING_MAX` steps. Any other optimizer (RMSprop, SGD without `fused`) gets the gradients
dropped instead, which needs the flag on the host: one read per step.
"""

from __future__ import annotations

import logging

import lightning as L
import torch
from torch.nn.utils import get_total_norm

from cnnlab.core.errors import UserError
from cnnlab.core.metric_names import NONFINITE_SKIPPED

log = logging.getLogger(__name__)
# Steps whose flags may wait on the device for a read: bounds the list when logging is rare (a
# read every 512 steps stalls a GPU for well under 0.1 % of its steps).
PENDING_MAX = 512


class NonFiniteError(UserError):
    """A NaN/Inf loss or gradient: training stops; that step changed no weight."""


def takes_found_inf(optimizer: torch.optim.Optimizer) -> bool:
    """The optimizer skips its own update when `found_inf` is set (fused Adam/AdamW/SGD)."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False)) and bool(
        optimizer.defaults.get("fused")
    )


class NonFiniteGuard(L.Callback):
    def __init__(self, policy: str = "stop", max_skips: int = 0):
        self.policy, self.max_skips = policy, max_skips
        self.allowed = max_skips if policy == "skip" else 0
        self.skipped = 0  # exact once the pending steps have been read (`check`)
        self.on_device = False
        self._loss: torch.Tensor | None = None  # this step's loss, on the device
        self._pending: list[_Step] = []  # steps not yet read, oldest first
        self._skip_this_step = False  # the host path's flag
        self._trainer = None

    # -- setup ---------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        scaled = getattr(trainer.precision_plugin, "scaler", None) is not None
        self.on_device = (
            not scaled
            and bool(trainer.optimizers)
            and all(takes_found_inf(o) for o in trainer.optimizers)
        )
        if not self.on_device and not scaled:
            names = ", ".join(sorted({type(o).__name__ for o in trainer.optimizers}))
            log.info("non-finite guard: %s has no fused step; one host read per step", names)
        self._pending = []
        self._names = {id(p): n for n, p in pl_module.named_parameters()}

    # -- each step -----------------------------------------------------------------------------
    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if self.on_device:
            self._loss = loss.detach()
            return
        self._skip_this_step = False
        if torch.isfinite(loss):
            return
        step = trainer.global_step
        if self._may_skip("loss", step):
            self._skip_this_step = True
            return
        value = loss.detach().item()  # detached: no autograd warning before the error line
        raise NonFiniteError(_loss_message(value, step, trainer.current_epoch))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            # 16-mixed: the GradScaler skips a step whose unscaled gradients overflow and lowers
            # its scale (routine in the first steps); that is its job, not a failure.
            return
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.on_device:
            if params:  # no gradient at all: the step changes nothing anyway
                self._flag_on_device(trainer, optimizer, params)
            return
        if self._skip_this_step:
            for p in params:  # no gradient: the optimizer leaves the parameter as it is
                p.grad = None
            return
        # One fused norm per tensor (get_total_norm) rather than isfinite().all() per tensor; the
        # total is finite only if every norm is, and one that overflows float32 flags the step.
        if not params or torch.isfinite(get_total_norm([p.grad for p in params])):
            return
        if self._may_skip("gradient", trainer.global_step):
            for p in params:
                p.grad = None
            return
        bad = [
            n
            for n, p in pl_module.named_parameters()
            if p.grad is not None and not torch.isfinite(p.grad).all()
        ] or ["a gradient whose norm overflows float32"]
        raise NonFiniteError(
            f"non-finite gradient at step {trainer.global_step} in {bad[0]} "
            f"(and {len(bad) - 1} more); the weights were not updated"
        )

    def _flag_on_device(self, trainer, optimizer, params: list[torch.nn.Parameter]) -> None:
        """found_inf for the fused step, and the step kept for the next read: five device ops
        a step, where the earlier record-keeping took ~28 (`make bench`, host ms per step)."""
        grads = [p.grad for p in params]
        loss = self._loss if self._loss is not None else grads[0].new_zeros(())
        # |loss| and each gradient's norm in one fused call; their sum is finite only if every
        # one is, and a sum that overflows flags the step too.
        health = torch.stack(torch._foreach_norm([loss.to(grads[0].dtype), *grads]))
        bad = health.sum().isfinite().logical_not()
        optimizer.found_inf = bad.float()  # the fused step then changes nothing
        optimizer.grad_scale = None
        self._pending.append(_Step(trainer.global_step, trainer.current_epoch, bad, loss, health,
                                   params))  # fmt: skip
        self._loss = None
        if len(self._pending) >= PENDING_MAX:
            self.check(trainer)

    # -- where the host reads anyway -----------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.on_device and host_reads_anyway(trainer, batch_idx):
            self.check(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # policy=skip: how many batches were skipped so far is a result (a diverging run shows
        # it: `make lecture`'s batchnorm verdict reads it from metrics.json). An epoch's end is
        # where the host reads anyway.
        if self.policy == "skip":
            if self.on_device:
                self.check(trainer)
            pl_module.log(NONFINITE_SKIPPED, float(self.skipped))

    def on_train_end(self, trainer, pl_module) -> None:
        if self.on_device:
            self.check(trainer)
        for optimizer in trainer.optimizers:
            for attr in ("found_inf", "grad_scale"):
                if hasattr(optimizer, attr):
                    delattr(optimizer, attr)

    def check(self, trainer) -> None:
        """Read the pending steps' flags (one read): warn for each skipped batch, stop past the
        allowed number, naming the first bad step beyond it."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        flags = torch.stack([step.bad for step in pending]).tolist()
        for step in (s for s, bad in zip(pending, flags, strict=True) if bad):
            if self.skipped >= self.allowed:
                raise NonFiniteError(self._describe(step))
            self.skipped += 1
            log.warning("non-finite %s at step %d: batch skipped (%d of %d allowed)",
                        step.what(), step.global_step, self.skipped, self.max_skips)  # fmt: skip

    def _describe(self, step: _Step) -> str:
        if step.what() == "loss":
            return _loss_message(step.loss.item(), step.global_step, step.epoch)
        bad = [p for p, finite in zip(step.params, step.health[1:].isfinite().tolist(), strict=True)
               if not finite]  # fmt: skip
        name = self._names.get(id(bad[0]), "a parameter") if bad else (
            "a gradient whose norm overflows float32")  # fmt: skip
        return (
            f"non-finite gradient at step {step.global_step} in {name} (and "
            f"{max(0, len(bad) - 1)} more); that step did not change the weights"
        )

    def _may_skip(self, what: str, step: int) -> bool:
        """policy=skip with skips left: count this one and say so (the host path)."""
        if self.policy != "skip" or self.skipped >= self.max_skips:
            return False
        self.skipped += 1
        log.warning(
            "non-finite %s at step %d: batch skipped (%d of %d allowed)",
            what,
            step,
            self.skipped,
            self.max_skips,
        )
        return True

    def state_dict(self) -> dict:
        # Collected before a checkpoint is written: a bad step past the limit stops the run here,
        # so no checkpoint follows it, and the count saved is exact.
        if self.on_device and self._pending:
            from lightning.pytorch.trainer.states import TrainerFn

            trainer = self._trainer
            if trainer is not None and trainer.state.fn == TrainerFn.FITTING:
                self.check(trainer)
        return {"skipped": self.skipped}

    def load_state_dict(self, state: dict) -> None:
        self.skipped = int(state.get("skipped", 0))

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer


class _Step:
    """One fused step as the device saw it; `bad`, `loss` and `health` are device tensors."""

    __slots__ = ("global_step", "epoch", "bad", "loss", "health", "params")

    def __init__(self, global_step, epoch, bad, loss, health, params):
        self.global_step, self.epoch, self.bad = global_step, epoch, bad
        self.loss, self.health, self.params = loss, health, params

    def what(self) -> str:
        return "gradient" if bool(self.loss.isfinite()) else "loss"


def host_reads_anyway(trainer, batch_idx: int) -> bool:
    """The loggers read this training step's values (a logging step), or the epoch ends here."""
    last = batch_idx + 1 >= trainer.num_training_batches
    return last or trainer._logger_connector.should_update_logs


def _loss_message(value: float, step: int, epoch: int) -> str:
    return (
        f"non-finite loss ({value}) at step {step} (epoch {epoch}); lower optimizer.lr, or set "
        f"callbacks.nonfinite.policy=skip callbacks.nonfinite.max_skips=K to skip such batches"
    )

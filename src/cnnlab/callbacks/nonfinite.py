"""The non-finite guard: a NaN/Inf loss or gradient stops training before the weights change
(`policy: stop`, exit 1 naming the step), or, with `policy: skip`, up to `max_skips` such batches
are skipped (their gradients are dropped, so the optimizer leaves every weight as it was)."""

from __future__ import annotations

import logging

import lightning as L
import torch

from cnnlab.errors import UserError

log = logging.getLogger(__name__)
POLICIES = ("stop", "skip")


class NonFiniteError(UserError):
    """A NaN/Inf loss or gradient: training stops before the weights are touched."""


class NonFiniteGuard(L.Callback):
    def __init__(self, policy: str = "stop", max_skips: int = 0):
        if policy not in POLICIES:
            raise UserError(
                f"nonfinite.policy={policy!r} is not valid; choose one of: {', '.join(POLICIES)}"
            )
        self.policy, self.max_skips = policy, max_skips
        self.skipped = 0
        self._skip_this_step = False

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        self._skip_this_step = False
        if torch.isfinite(loss):
            return
        step = trainer.global_step
        if self._may_skip("loss", step):
            self._skip_this_step = True
            return
        value = loss.detach().item()  # detached: no autograd warning before the error line
        raise NonFiniteError(
            f"non-finite loss ({value}) at step {step} (epoch {trainer.current_epoch}); "
            f"lower optimizer.lr, or set nonfinite.policy=skip "
            f"nonfinite.max_skips=K to skip such batches"
        )

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self._skip_this_step:
            for p in params:  # no gradient: the optimizer leaves the parameter as it is
                p.grad = None
            return
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            # 16-mixed: the GradScaler skips a step whose unscaled gradients overflow and lowers
            # its scale (routine in the first steps); that is its job, not a failure.
            return
        # One fused norm per tensor: 3.8 ms instead of 26 ms per ResNet-18 step here
        # (isfinite().all() per tensor); their sum is finite only if every norm is, and a sum
        # that overflows float32 flags the step too.
        if not params or torch.isfinite(
            torch.stack(torch._foreach_norm([p.grad for p in params])).sum()
        ):
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

    def _may_skip(self, what: str, step: int) -> bool:
        """policy=skip with skips left: count this one and say so."""
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
        return {"skipped": self.skipped}

    def load_state_dict(self, state: dict) -> None:
        self.skipped = int(state.get("skipped", 0))

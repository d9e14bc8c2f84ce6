"""Learning-rate schedules as Lightning scheduler dicts.

Each factory takes the optimizer plus the run's length (`total_steps` optimizer steps,
`max_epochs`), which only the Trainer knows, so configs stay free of step counts.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR, ReduceLROnPlateau, StepLR


def cosine(
    optimizer: Optimizer,
    *,
    total_steps: int,
    max_epochs: int,
    warmup_fraction: float = 0.05,
    min_lr_ratio: float = 0.0,
) -> dict:
    """Linear warmup over `warmup_fraction` of the steps, then cosine decay to min_lr_ratio × lr."""
    warmup = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}


def onecycle(
    optimizer: Optimizer,
    *,
    total_steps: int,
    max_epochs: int,
    pct_start: float = 0.25,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> dict:
    """Smith's one-cycle: the configured lr is the peak; starts at lr/div_factor."""
    max_lr = [g["lr"] for g in optimizer.param_groups]
    total = max(total_steps, 3)
    # torch divides by the warm-up length, pct_start × total − 1 steps: keep it ≥ 1 step, else
    # tiny runs (4 steps at 0.25) crash with ZeroDivisionError.
    sched = OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=total,
        pct_start=max(pct_start, 2 / total),
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
    return {"scheduler": sched, "interval": "step"}


def step(
    optimizer: Optimizer,
    *,
    total_steps: int,
    max_epochs: int,
    step_size: int = 30,
    gamma: float = 0.1,
) -> dict:
    """Multiply the lr by `gamma` every `step_size` epochs (torchvision's ResNet recipe)."""
    return {"scheduler": StepLR(optimizer, step_size=step_size, gamma=gamma), "interval": "epoch"}


def plateau(
    optimizer: Optimizer,
    *,
    total_steps: int,
    max_epochs: int,
    monitor: str = "val/loss",
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 5,
) -> dict:
    sched = ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience)
    return {"scheduler": sched, "interval": "epoch", "monitor": monitor}

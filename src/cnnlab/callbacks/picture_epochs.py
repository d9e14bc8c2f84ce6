"""When the picture callbacks (Grad-CAM grid, diagnostics) draw: one rule for both."""

from __future__ import annotations

import lightning as L


def draws_after_this_epoch(trainer: L.Trainer, every_n_epochs: int) -> bool:
    """After epochs N, 2N, … (as Lightning's `check_val_every_n_epoch` counts) and after the last
    (the final network); N ≤ 0: after the last only. Rank 0 only, never in the sanity check."""
    epoch = trainer.current_epoch + 1
    last = epoch >= (trainer.max_epochs or 0)
    due = every_n_epochs > 0 and epoch % every_n_epochs == 0
    return not trainer.sanity_checking and trainer.global_rank == 0 and (due or last)

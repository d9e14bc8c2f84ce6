"""A checkpoint when training dies of an unexpected exception or is stopped with Ctrl-C, so the
run can resume from the step it reached with `ckpt_path=last` (the newest of last.ckpt and this
file; mid-epoch: the rest of that epoch is not replayed exactly; resuming says so).

Not for a user's mistake (a UserError such as a non-finite loss: nothing worth keeping, and a
NaN model must never become something to resume from), and never with non-finite weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch

from cnnlab.core import checkpoint
from cnnlab.core.errors import UserError

log = logging.getLogger(__name__)
FILENAME = checkpoint.ON_EXCEPTION


class CheckpointOnException(L.Callback):
    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception) -> None:
        # During fit only (training or its validation), not in the sanity check or `test`.
        if (
            isinstance(exception, UserError)
            or trainer.state.fn != "fit"
            or trainer.sanity_checking
            or trainer.global_step == 0  # nothing trained yet (setup, first batch): nothing to
            # keep, and under DDP saving waits for ranks that may be elsewhere (a deadlock)
        ):
            return
        if not all(torch.isfinite(p).all() for p in pl_module.parameters()):
            log.error("not saving %s: the weights are not finite", FILENAME)
            return
        path = self.dirpath / FILENAME
        trainer.save_checkpoint(path)  # atomic: AtomicCheckpointIO
        log.error(
            "%s: %s — saved %s at step %d (epoch %d); resume with ckpt_path=%s",
            type(exception).__name__,
            exception,
            path,
            trainer.global_step,
            trainer.current_epoch,
            path,
        )

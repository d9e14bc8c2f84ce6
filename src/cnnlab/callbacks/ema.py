"""Lightning's EMA weight averaging without host reads in the training step.

`torch.optim.swa_utils.AveragedModel.update_parameters` asks the device `n_averaged == 0` and
`n_averaged > 0` on every update: two GPU syncs per step (counted by the host-read tests). Here
the number of updates is also kept on the host (read from the device once, when training
starts), and the average is updated by torch's public multi-tensor EMA,
`torch.optim.swa_utils.get_ema_multi_avg_fn` (a few kernels instead of one per parameter):
the same average as `AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(decay))`, tested bit for
bit.
"""

from __future__ import annotations

import itertools

import torch
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn


class EMA(EMAWeightAveraging):
    def __init__(self, decay: float = 0.99, **kwargs) -> None:
        super().__init__(decay=decay, **kwargs)
        self._ema = get_ema_multi_avg_fn(decay)
        self._updates: int | None = None  # the average's n_averaged, known on the host
        self._groups: list[list[int]] | None = None  # tensor indices by device and dtype

    def on_train_start(self, trainer, pl_module) -> None:
        if self._average_model is not None:  # restored from a checkpoint by now, if resuming
            self._updates = int(self._average_model.n_averaged)
        self._groups = None  # this fit's average: grouped at its first update

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step_idx = trainer.global_step - 1  # as Lightning counts it
        if trainer.global_step > self._latest_update_step and self.should_update(step_idx=step_idx):
            self.update(pl_module)
            self._latest_update_step = trainer.global_step

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch
        if epoch > self._latest_update_epoch and self.should_update(epoch_idx=epoch):
            self.update(pl_module)
            self._latest_update_epoch = epoch

    @torch.no_grad()
    def update(self, pl_module) -> None:
        average = self._average_model
        if self._updates is None:
            self._updates = int(average.n_averaged)
        with_buffers = average.use_buffers
        mine = _tensors(average.module, with_buffers)
        current = _tensors(pl_module, with_buffers)  # the average is a deep copy: same order
        theirs = [t.to(m.device) for t, m in zip(current, mine, strict=True)]
        if self._updates == 0:
            for m, t in zip(mine, theirs, strict=True):
                m.copy_(t)
        else:
            for group in self._grouped(mine):
                self._ema([mine[i] for i in group], [theirs[i] for i in group], None)
        if not with_buffers:  # buffers follow the model, as AveragedModel keeps them
            for b_avg, b_model in zip(average.module.buffers(), pl_module.buffers(), strict=True):
                b_avg.copy_(b_model.detach().to(b_avg.device))
        average.n_averaged += 1
        self._updates += 1

    def _grouped(self, mine: list[torch.Tensor]) -> list[list[int]]:
        """The average's tensor indices by device and dtype, as AveragedModel groups them for
        the same function; found once, since the average's tensors stay where they are."""
        if self._groups is None:
            groups: dict[tuple, list[int]] = {}
            for i, m in enumerate(mine):
                groups.setdefault((m.device, m.dtype), []).append(i)
            self._groups = list(groups.values())
        return self._groups


def _tensors(module: torch.nn.Module, with_buffers: bool) -> list[torch.Tensor]:
    chain = itertools.chain(module.parameters(), module.buffers()) if with_buffers else None
    return [t.detach() for t in (chain if chain is not None else module.parameters())]

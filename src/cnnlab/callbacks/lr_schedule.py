"""Lightning's LearningRateMonitor, one curve per distinct schedule: cnnlab's parameter groups
(backbone, head, and their no-weight-decay twins) would otherwise draw four identical curves for
a network trained at one rate. Groups whose rates have been equal at every logged point share a
curve (the first group's name); a single remaining curve is named after the optimizer alone
(`lr-AdamW`)."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import LearningRateMonitor


class ScheduleMonitor(LearningRateMonitor):
    off = False  # set at fit start: no logger, nothing to monitor

    def _extract_stats(self, trainer, interval: str) -> dict[str, float]:
        stats = super()._extract_stats(trainer, interval)
        rates = [k for k in stats if k in self.lrs]
        distinct: dict[str, float] = {}
        seen: list[tuple[float, ...]] = []
        for name in rates:
            series = tuple(self.lrs[name])
            if series not in seen:
                seen.append(series)
                distinct[name] = stats[name]
        if len(distinct) == 1:
            ((name, value),) = distinct.items()
            distinct = {name.split("/")[0]: value}
        for name in rates:  # Lightning also put every group's rate into the run's final metrics
            trainer.callback_metrics.pop(name, None)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in distinct.items()})
        return {**{k: v for k, v in stats.items() if k not in rates}, **distinct}

    # logger=none: no curve to draw. Lightning's monitor refuses such a run outright; this one
    # steps aside, so `logger=none` works with the default callbacks.
    def on_train_start(self, trainer, *args, **kwargs) -> None:
        self.off = not trainer.loggers
        if not self.off:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer, *args, **kwargs) -> None:
        if not self.off:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer, *args, **kwargs) -> None:
        if not self.off:
            super().on_train_epoch_start(trainer, *args, **kwargs)

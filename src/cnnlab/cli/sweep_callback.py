"""The Hydra callback that keeps a multirun folder's sweep report current
(`hydra.callbacks.report` in conf/hydra/default.yaml)."""

from __future__ import annotations

import signal
from pathlib import Path

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from cnnlab.analysis.sweep_report import markdown, plan, write
from cnnlab.core.errors import SIGTERM_EARLY, RunInterrupted


class SweepReport(Callback):
    """Hydra callback: rewrite the report after every job (so a sweep that stops on a failure
    still has one) and print it, with the plot and TensorBoard text, when the sweep ends."""

    def __init__(self, group_by: str | None = None) -> None:
        self.group_by = group_by
        self._before = signal.SIG_DFL  # the SIGTERM handler the sweep replaced, put back at its end

    def on_multirun_start(self, config, **kwargs) -> None:
        plan(Path(config.hydra.sweep.dir), config)
        self._before = signal.signal(signal.SIGTERM, self._stop) or signal.SIG_DFL

    def _stop(self, signum, frame) -> None:
        """SIGTERM outside training (a job starting, or between jobs): the sweep stops with its
        report written, like a SIGTERM during training (which Lightning handles: it composes this
        handler after its own and saves a checkpoint first, so here it does nothing then)."""
        if signal.getsignal(signal.SIGTERM) != self._stop:  # inside Lightning's fit
            return
        raise RunInterrupted(SIGTERM_EARLY, 143)

    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        if config.hydra.mode == RunMode.MULTIRUN and Path(config.hydra.sweep.dir).is_dir():
            # A failed job ends the sweep before on_multirun_end: TensorBoard gets it now.
            failed = getattr(job_return, "status", None) == JobStatus.FAILED
            write(Path(config.hydra.sweep.dir), self.group_by, tensorboard=failed)

    def on_multirun_end(self, config, **kwargs) -> None:
        signal.signal(signal.SIGTERM, self._before)
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write(sweep_dir, self.group_by, tensorboard=True)
            text = markdown(rows, self.group_by)
            from cnnlab.training.sweep_loggers import attach

            attach(config, sweep_dir, text)  # MLflow parent run / W&B group run with the report
            print(f"\nSweep report ({sweep_dir / 'report.md'}):\n{text}")

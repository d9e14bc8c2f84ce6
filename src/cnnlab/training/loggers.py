"""The loggers cnnlab configures (conf/logger/).

TensorBoard: one events file per run. Lightning closes the writer when `fit` ends, so the `test`
that follows opens a second events file in the same folder; this logger only flushes between
stages and closes once, at the end of the run. It also leaves out Lightning's `epoch` scalar,
which would otherwise be the first chart of the Scalars tab (the step axis already counts).
MLflow: null tags dropped, asynchronous logging flushed at each stage's end. W&B: the run is
finished when cnnlab's run ends.
"""

from __future__ import annotations

import os

from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

# The package each logger needs, and the extra that installs it.
EXTRAS = {"mlflow": "mlflow", "wandb": "wandb"}


class RunTensorBoardLogger(TensorBoardLogger):
    @rank_zero_only
    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()
        if status == "success":
            self.save()

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()


BUFFER_ENV = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"
BUFFER_S = 10  # seconds MLflow's queue gathers metrics before one write


class RunMLFlowLogger(MLFlowLogger):
    """Tags without a value are left out (a single run has no `sweep`; MLflow rejects a null tag),
    and with `synchronous: false` the queued metrics and images are flushed when a stage ends, so
    what the run folder says is finished is also in the store."""

    def __init__(self, *args, tags: dict | None = None, **kwargs) -> None:
        tags = {k: str(v) for k, v in (tags or {}).items() if v is not None}
        # MLflow's queue thread writes each queued log_batch in its own SQLite transaction
        # (~10 ms of Python holding the GIL, every 10 steps), which slowed a 2-epoch ConvNet fit by
        # ~17 % on 2 cores (make bench: 0.833 vs TensorBoard alone). Merging what arrives within
        # BUFFER_S into one write: 0.995. Metrics reach the store up to BUFFER_S late; `finalize`
        # flushes at once. A value the user set wins.
        os.environ.setdefault(BUFFER_ENV, str(BUFFER_S))
        super().__init__(*args, tags=tags or None, **kwargs)
        self.synchronous = kwargs.get("synchronous")  # images follow the metrics' setting

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        import mlflow

        mlflow.flush_async_logging()
        super().finalize(status)


class RunWandbLogger(WandbLogger):
    """Finishes its W&B run when cnnlab's run ends (Lightning leaves it open until the process
    exits: the jobs of a sweep in one process would share it, and an offline run's summary would
    not be written)."""

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.finish()


def missing_package(name: str, err: BaseException | None) -> str | None:
    """One line naming the install when logger `name` failed because its package is missing
    (an ImportError anywhere in the exception's chain), else None."""
    extra, package = next(((k, p) for k, p in EXTRAS.items() if k in name.lower()), (None, None))
    while package and err is not None:
        if isinstance(err, ImportError) or "No module named" in str(err):
            return (
                f"logger.{name} needs the {package} package, which is not installed: "
                f"pip install 'cnnlab[{extra}]' (or pip install {package})"
            )
        err = err.__cause__ or err.__context__
    return None

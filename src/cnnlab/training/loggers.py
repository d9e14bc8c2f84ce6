"""The loggers cnnlab configures (conf/logger/).

TensorBoard: one events file per run. Lightning closes the writer when `fit` ends, so the `test`
that follows opens a second events file in the same folder; this logger only flushes between
stages and closes once, at the end of the run. It also leaves out Lightning's `epoch` scalar,
which would otherwise be the first chart of the Scalars tab (the step axis already counts); its
custom-scalars layout puts train and validation on one chart (callbacks/hparams.py).
MLflow: null tags dropped, asynchronous logging flushed whenever epoch values are logged (so a
checkpoint never holds an epoch the store lacks) and when a stage ends or is interrupted, the
`epoch` value once per step. W&B: the run is finished when cnnlab's run ends.
MLflow and W&B continue their tracking run on a resume: `TrackingRuns` stores each one's id in
the checkpoint and `continue_run` hands it back to the logger built for the resumed run.
"""

from __future__ import annotations

import logging
import os
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from cnnlab.core import checkpoint as contract  # `checkpoint` is Lightning's dict in hooks
from cnnlab.core import extras

log = logging.getLogger(__name__)


class RunTensorBoardLogger(TensorBoardLogger):
    @rank_zero_only
    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()  # not closed: the test that follows writes the same file
        if status == "success":
            self.save()

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()


BUFFER_ENV = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"  # MLflow 3
BUFFER_S = 10  # seconds MLflow's queue gathers metrics before one write


class RunMLFlowLogger(MLFlowLogger):
    """Tags without a value are left out (a single run has no `sweep`; MLflow rejects a null tag),
    and with `synchronous: false` the queued metrics and images are flushed when epoch values are
    logged and when a stage ends, so what the run folder says is finished is also in the store.
    `run_id` (a resume) continues that run: back to RUNNING, its parameters kept."""

    def __init__(self, *args, tags: dict | None, **kwargs) -> None:
        tags = {k: str(v) for k, v in (tags or {}).items() if v is not None}
        # MLflow's queue thread writes each queued log_batch in its own SQLite transaction, Python
        # holding the GIL while training waits; merging what arrives within BUFFER_S into one
        # write brings MLflow's cost to the noise floor (make bench's "TensorBoard + MLflow"
        # row; docs/loggers.md). Step metrics reach the store up to BUFFER_S late; epoch values
        # and `finalize` flush at once. A value the user set wins.
        os.environ.setdefault(BUFFER_ENV, str(BUFFER_S))
        super().__init__(*args, tags=tags or None, **kwargs)
        self.synchronous = kwargs.get("synchronous")  # images follow the metrics' setting
        self._continues = self._run_id is not None
        self._epoch_step: int | None = None  # the step whose `epoch` value was logged

    @property
    def experiment(self):
        opening = not self._initialized
        if opening and self._continues and not self._run_exists():
            self._run_id, self._continues = None, False  # another store: start a new run
        client = MLFlowLogger.experiment.fget(self)
        if opening:
            self._mark_model_training(client)
        if opening and self._continues:
            client.update_run(self._run_id, status="RUNNING")
            log.info("MLflow: continuing run %s", self._run_id)
        return client

    def _mark_model_training(self, client) -> None:
        """MLflow 3's UI files an experiment without a kind under GenAI ("Evaluation runs");
        cnnlab's are model training. A kind the user chose is kept."""
        experiment = client.get_experiment(self.experiment_id)
        if EXPERIMENT_KIND not in (experiment.tags or {}):
            client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)

    def _run_exists(self) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self._mlflow_client.get_run(self._run_id)
        except MlflowException:
            log.warning("MLflow run %s is not in %s: logging to a new run", self._run_id,
                        self._tracking_uri)  # fmt: skip
            return False
        return True

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        if self._continues:  # MLflow refuses a parameter's second, different value
            logged = self.experiment.get_run(self.run_id).data.params
            given = vars(params) if isinstance(params, Namespace) else params or {}
            params = {k: v for k, v in _flat(given).items() if k not in logged}
        if params:
            super().log_hyperparams(params)

    @rank_zero_only
    def log_metrics(self, metrics, step=None) -> None:
        if "epoch" in metrics:  # Lightning adds it to each of a step's calls: keep the first
            if self._epoch_step == step:
                metrics = {k: v for k, v in metrics.items() if k != "epoch"}
            self._epoch_step = step
        if not metrics:
            return
        super().log_metrics(metrics, step)
        if self.synchronous is False and any(_per_epoch(k) for k in metrics):
            import mlflow

            mlflow.flush_async_logging()  # before the checkpoint that follows an epoch's values

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        import mlflow

        mlflow.flush_async_logging()
        super().finalize(status)


def _per_epoch(key: str) -> bool:
    """Values logged once an epoch (val/…, train/loss, test/…), not each step's (…_step, the
    learning rate, `epoch`)."""
    return not (key.endswith("_step") or key.startswith("lr-") or key == "epoch")


class RunWandbLogger(WandbLogger):
    """Finishes its W&B run when cnnlab's run ends (Lightning leaves it open until the process
    exits: the jobs of a sweep in one process would share it, and an offline run's summary would
    not be written)."""

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.finish()


# How each resumable logger is told the run to continue: its class → constructor arguments.
CONTINUE = {
    f"{__name__}.RunMLFlowLogger": lambda run_id: {"run_id": run_id},
    f"{__name__}.RunWandbLogger": lambda run_id: {"id": run_id, "resume": "allow"},
}


def continue_run(target: str, run_id: str) -> dict[str, Any]:
    """Constructor arguments that make logger class `target` continue tracking run `run_id`."""
    make = CONTINUE.get(target)
    return make(run_id) if make else {}


class TrackingRuns(L.Callback):
    """Stores the id of each resumable logger's tracking run in the checkpoint (`tracking_runs`),
    so a resume from it continues the same MLflow / W&B run instead of starting a second one."""

    def __init__(self, named: dict[str, Any]):
        self.named = {
            name: lg for name, lg in named.items() if isinstance(lg, (MLFlowLogger, WandbLogger))
        }

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.named:
            runs = {name: str(lg.version) for name, lg in self.named.items()}
            contract.put_tracking_runs(checkpoint, runs)


def missing_package(name: str, err: BaseException | None) -> str | None:
    """One line naming the install when logger `name` failed because its package is missing
    (an ImportError anywhere in the exception's chain), else None."""
    package = next((p for p in extras.LOGGERS.values() if p in name.lower()), None)
    while package and err is not None:
        if isinstance(err, ImportError) or "No module named" in str(err):
            return extras.logger_line(name, package)
        err = err.__cause__ or err.__context__
    return None


def _flat(params: Mapping, prefix: str = "") -> dict[str, Any]:
    """The parameter names MLFlowLogger logs: nested keys joined by "/", a list of dicts as
    `key/0/…` (Lightning's flattening; the logger flattens what it is given the same way)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flat(value, name))
        elif isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
            for i, item in enumerate(value):
                flat.update(_flat(item, f"{name}/{i}"))
        else:
            flat[name] = value
    return flat

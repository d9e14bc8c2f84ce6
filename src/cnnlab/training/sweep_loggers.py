"""A finished sweep in MLflow and Weights & Biases: its jobs were runs tagged with the sweep
(MLflow tag `sweep`, W&B group); this adds one run for the sweep itself holding its report, and
in MLflow makes it the parent of the jobs' runs, so the UI nests them under it."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def attach(config: DictConfig, sweep_dir: Path, text: str) -> None:
    group = OmegaConf.select(config, "logger", default=None) or {}
    for name, node in group.items():
        target = str((node or {}).get("_target_", ""))
        try:
            if target.endswith("MLFlowLogger"):
                _mlflow(config, node, sweep_dir, text)
            elif target.endswith("WandbLogger"):
                _wandb(node, sweep_dir, text)
        except Exception as err:  # noqa: BLE001 - the sweep's own results are already written
            log.warning("sweep report not attached to logger.%s: %s", name, err)


def _mlflow(config: DictConfig, node: DictConfig, sweep_dir: Path, text: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=str(node.tracking_uri))
    experiment = client.get_experiment_by_name(str(config.task_name))
    if experiment is None:  # no job got as far as its logger
        return
    jobs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.sweep = '{sweep_dir.name}'"
    )
    parent = client.create_run(
        experiment.experiment_id,
        run_name=f"sweep {sweep_dir.name}",
        tags={"sweep": sweep_dir.name, "sweep_dir": str(sweep_dir), "cnnlab.kind": "sweep"},
    )
    run_id = parent.info.run_id
    client.log_text(run_id, text, "report.md")
    for extra in ("report.png", "report.csv"):
        if (sweep_dir / extra).is_file():
            client.log_artifact(run_id, str(sweep_dir / extra))
    for job in jobs:
        client.set_tag(job.info.run_id, "mlflow.parentRunId", run_id)
    client.set_terminated(run_id)


def _wandb(node: DictConfig, sweep_dir: Path, text: str) -> None:
    import wandb

    run = wandb.init(
        project=str(node.project),
        group=sweep_dir.name,
        name=f"sweep {sweep_dir.name}",
        job_type="sweep-report",
        dir=str(sweep_dir),
        mode="offline" if node.get("offline", True) else "online",
        reinit="finish_previous",
    )
    run.log({"sweep/report": wandb.Html(f"<pre>{text}</pre>")})
    if (sweep_dir / "report.png").is_file():
        run.log({"sweep/report_plot": wandb.Image(str(sweep_dir / "report.png"))})
    run.finish()

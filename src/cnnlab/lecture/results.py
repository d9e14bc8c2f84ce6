"""Reading a finished lecture sweep: every job's overrides, metrics.json and learning curves, and
mean ± std over the seeds of each configuration."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.analysis import sweep_report as report
from cnnlab.core import checkpoint
from cnnlab.core.tables import markdown_table as table  # noqa: F401 - claims use it

# Read from TensorBoard: per epoch, and the logged steps' loss (a blow-up shows there).
CURVES = ("train/loss", "val/acc", "train/loss_step")


@dataclass
class Job:
    folder: Path
    set: dict[str, str]  # the overrides this job was given (seed included)
    metrics: dict[str, Any]  # metrics.json; empty when the job did not finish
    extra: dict[str, float] = field(default_factory=dict)  # measured by the runner afterwards
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # tag → (step, value)

    def get(self, key: str, default: Any = None) -> Any:
        return self.extra.get(key, self.metrics.get(key, default))

    @property
    def ok(self) -> bool:
        return bool(self.metrics)


def jobs(sweep_dir: Path) -> list[Job]:
    """Every job of a finished sweep folder, with the overrides the sweep gave it."""
    return [job(sweep_dir / row["job"], dict(row["set"])) for row in report.collect(sweep_dir)]


def job(folder: str | Path, settings: dict[str, str]) -> Job:
    """One run folder as the verdicts read it (a sweep's job, or a `cnnlab.train` Run's folder
    with the settings that tell it apart: {"model": "mlp", "seed": "1"})."""
    found = Job(Path(folder), dict(settings), checkpoint.read_metrics(folder))
    if found.ok:
        found.curves = curves(found, CURVES)
        found.extra["num_classes"] = setting(found, "data.num_classes")
    return found


def setting(job: Job, key: str) -> Any:
    """One value of the configuration the job ran with (its .hydra/config.yaml, data only)."""
    from omegaconf import OmegaConf

    config = job.folder / ".hydra" / "config.yaml"
    return OmegaConf.select(OmegaConf.load(config), key) if config.is_file() else None


def by(jobs_: list[Job], *keys: str) -> dict[tuple, list[Job]]:
    """Finished jobs grouped by the values of `keys` (in sweep order)."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs_:
        if job.ok:
            groups.setdefault(tuple(job.set.get(k) for k in keys), []).append(job)
    return groups


def mean(members: list[Job], metric: str) -> float:
    values = [float(j.get(metric)) for j in members if j.get(metric) is not None]
    return statistics.fmean(values) if values else float("nan")


def std(members: list[Job], metric: str) -> float:
    values = [float(j.get(metric)) for j in members if j.get(metric) is not None]
    return statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std(members: list[Job], metric: str, scale: float = 1.0, digits: int = 2) -> str:
    m, s = mean(members, metric) * scale, std(members, metric) * scale
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def events(job: Job, kind: str):
    """Each of the job's TensorBoard events files (its run, not the learning-curve runs below
    it), loaded with every `kind` record kept ("scalars", "images")."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for path in sorted((job.folder / "tb").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path), size_guidance={kind: 0})
        acc.Reload()
        yield acc


def curves(job: Job, tags: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of each scalar in `tags` from the job's TensorBoard events (the learning
    curves), every events file read once for all of them."""
    points: dict[str, list[tuple[int, float]]] = {tag: [] for tag in tags}
    for acc in events(job, "scalars"):
        logged = acc.Tags().get("scalars", [])
        for tag in (t for t in tags if t in logged):
            points[tag] += [(e.step, e.value) for e in acc.Scalars(tag)]
    return {tag: sorted(found) for tag, found in points.items()}

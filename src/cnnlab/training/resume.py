"""Resuming a run: which checkpoint, whether it fits, whether the run already finished, and
whether the new command asks for something the checkpoint would silently override."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cnnlab.core import checkpoint
from cnnlab.core.errors import UserError
from cnnlab.core.moved_keys import renamed

log = logging.getLogger(__name__)

# Config keys a resumed run may change: how long, where, how it is logged and on what hardware.
# Everything else (model, data, augmentation, optimizer, schedule, freezing, module) changes what
# is trained, and the checkpoint's weights and optimizer state would silently override it.
MAY_CHANGE = (
    "trainer.",
    "callbacks.",
    "logger.",
    "paths.",
    "run_id",
    "ckpt_path",
    "seed",  # the RNG state comes back from the checkpoint (data.seed, the split, may not change)
    "test",
    "test_ckpt",
    "eval_report",  # after training: the report and calibration of the tested checkpoint
    "calibrate",
    "optimized_metric",
    "task_name",
    "data.num_workers",
    "data.pin_memory",
    "data.eval_batch_size",
    "data.sanity_report",
    "data.source.root",
    "data.source.download",
)


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from: `ckpt_path`, `last` for this run folder's newest checkpoint,
    and that checkpoint too when the folder is pinned by `run_id` or SLURM requeued this job
    (SLURM_RESTART_COUNT > 0: submitit's sweep jobs keep their folder): the job continues."""
    run_dir = Path(cfg.paths.output_dir)
    wanted = cfg.get("ckpt_path")
    requeued = os.environ.get("SLURM_RESTART_COUNT", "0").strip() not in ("", "0")
    if wanted is None and (cfg.get("run_id") or requeued) and checkpoint.latest(run_dir):
        wanted = "last"
    if wanted == "last":
        newest = checkpoint.latest(run_dir)
        if newest is None:
            log.warning("ckpt_path=last: no checkpoint in %s yet; starting fresh", run_dir)
            return None
        return str(newest)
    return wanted


def _epoch_progress(stored: dict[str, Any]) -> dict[str, int]:
    loops = stored.get("loops", {}).get("fit_loop", {})
    return loops.get("epoch_progress", {}).get("current", {})


def completed_epochs(stored: dict[str, Any]) -> int:
    """Epochs whose batches all ran (a checkpoint saved at an epoch's end counts that epoch;
    Lightning marks it `completed` only after the save)."""
    return int(_epoch_progress(stored).get("processed", 0))


def test_unfinished(stored: dict[str, Any], cfg: DictConfig) -> bool:
    """The checkpoint's fit completed `trainer.max_epochs`, but the run has no metrics.json: its
    end-of-training test and report never ended (the process was killed during them)."""
    wanted = cfg.trainer.get("max_epochs") or -1
    return (
        wanted != -1
        and completed_epochs(stored) >= wanted
        and not checkpoint.read_metrics(cfg.paths.output_dir)
    )


def finished_metrics(
    ckpt_path: str, stored: dict[str, Any], trained_with: dict[str, Any], cfg: DictConfig
) -> dict | None:
    """The final metrics of a run whose fit already completed `trainer.max_epochs` epochs (then
    nothing is trained again), else None: also for a finished fit whose test and report never
    ended (no metrics.json: they run again). A larger `trainer.max_epochs` extends the run.
    `trained_with`: the checkpoint's config, checked (`checkpoint.stored_config`)."""
    done, wanted = completed_epochs(stored), cfg.trainer.get("max_epochs") or -1
    trained_for = trained_with.get("trainer", {})
    if wanted != -1 and done >= wanted:
        saved = checkpoint.read_metrics(cfg.paths.output_dir)
        if not saved:  # fit ended, but its test and report did not (the process was killed)
            log.info("%s: training finished (%d epochs) but its test and report did not; "
                     "running them now", ckpt_path, done)  # fmt: skip
            return None  # fit restores the finished state and trains nothing; the test follows
        metrics = {k: float(v) for k, v in saved.items() if isinstance(v, int | float)}
        log.info(
            "%s: this run already finished (%d epochs); nothing to train. Final metrics: %s. "
            "To train longer, raise trainer.max_epochs; to test again, cnnlab-eval "
            "ckpt_path=%s; for a new run, choose another run_id",
            ckpt_path,
            done,
            metrics,
            Path(ckpt_path).with_name(checkpoint.BEST),
        )
        return metrics
    if done and done >= (trained_for.get("max_epochs") or 0):
        schedule = str((cfg.get("scheduler") or {}).get("_target_", ""))
        if schedule.endswith(".onecycle"):
            raise UserError(
                f"trainer.max_epochs={wanted} would extend a finished {done}-epoch run, but "
                f"scheduler=onecycle planned its cycle for {done} epochs; start a new run "
                f"(another run_id) or use scheduler=cosine|step|none"
            )
        log.info("extending the finished %d-epoch run to trainer.max_epochs=%d", done, wanted)
    return None


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def changed_keys(stored_cfg: dict[str, Any], new_cfg: dict[str, Any]) -> list[str]:
    """`key old → new` for every value that differs and may not change on a resume."""
    old, new = renamed(_flat(stored_cfg)), _flat(new_cfg)  # a run saved before a key moved
    return [
        f"{key} {old.get(key)!r} → {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key) and not key.startswith(MAY_CHANGE)
    ]


def check(
    ckpt_path: str, stored: dict[str, Any], trained_with: dict, own_state: dict, new_cfg: dict
) -> None:
    """Refuse, in one line, a checkpoint that does not fit this model or that was trained with
    other settings (`trained_with`, its checked config); say from where training continues
    (mid-epoch cannot be continued exactly)."""
    problems = checkpoint.mismatch(own_state, checkpoint.module_state(stored))
    if problems:
        raise UserError(f"ckpt_path={ckpt_path} does not fit this model ({problems})")
    changed = changed_keys(trained_with, new_cfg) if trained_with else []
    if changed:
        raise UserError(
            f"cannot resume {ckpt_path} with other settings ({'; '.join(changed[:4])}"
            f"{f'; and {len(changed) - 4} more' if len(changed) > 4 else ''}): the checkpoint's "
            f"state would override them. Drop those overrides, or start a new run (another "
            f"run_id) with model.weights={ckpt_path} to start from its weights"
        )
    current = _epoch_progress(stored)
    if current.get("processed", 0) < current.get("started", 0):
        log.warning(
            "resuming from %s, saved mid-epoch (epoch %s, step %s): training continues from "
            "that step, but the rest of that epoch is not replayed exactly (a DataLoader "
            "cannot resume mid-epoch; the epoch may end a batch early), so the result will "
            "differ from an uninterrupted run",
            ckpt_path,
            stored.get("epoch"),
            stored.get("global_step"),
        )
    else:
        log.info("resuming from %s (saved after epoch %s)", ckpt_path, stored.get("epoch"))

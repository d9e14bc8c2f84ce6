"""Evaluate a checkpoint: `cnnlab-eval ckpt_path=outputs/.../checkpoints/best.ckpt`.

The network is rebuilt from the config stored in the checkpoint; the data too, unless `data=...`
names another dataset. Writes the evaluation report into the run folder's `eval/<split>/`
(metrics, per-class table, confusion matrix, reliability diagram, most confident mistakes) and
its figures to TensorBoard; `calibrate=true` first fits a temperature on the validation split
and stores it in the checkpoint (`predict`, `export` and `cnnlab.load` use it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from cnnlab.analysis import eval_report
from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli, say
from cnnlab.cli.schema import validate
from cnnlab.core import checkpoint
from cnnlab.core.errors import UserError
from cnnlab.training import build, calibration, eval_pass

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    validate(cfg)  # also when called from Python
    ckpt_path = Path(cfg.ckpt_path)
    ckpt = checkpoint.load(ckpt_path)
    stored = checkpoint.run_config(ckpt, ckpt_path)
    stored = checkpoint.rebase(
        stored, stored.get("paths", {}).get("data_dir", ""), cfg.paths.data_dir
    )
    other = cfg.get("data")
    trained = stored["data"]["num_classes"]
    if other is not None and other.num_classes != trained:
        raise UserError(
            f"{ckpt_path} predicts {trained} classes, but data={other.name} has "
            f"{other.num_classes}; evaluate on data with the same classes (e.g. "
            f"data.source.classes=[…] data.num_classes={trained})"
        )
    L.seed_everything(cfg.seed, verbose=False)
    run_cfg, _, datamodule, net = build.restore(stored, cfg.get("data"))
    model = build.classifier(run_cfg, net)
    checkpoint.load_state(model, checkpoint.trained_state(ckpt, ckpt_path), ckpt_path)
    trainer = build.trainer(cfg, callbacks=[], loggers=list(build.loggers(cfg).values()))
    run = trainer.test if cfg.split == "test" else trainer.validate
    results = run(model, datamodule=datamodule)
    metrics = {k: float(v) for k, v in results[0].items()}
    run_dir = Path(cfg.paths.output_dir)
    report = eval_pass.report(
        model.net,
        datamodule,
        cfg.split,
        run_dir / "eval",
        # calibrate=true fits a new one: a damaged stored temperature is replaced, not refused
        temperature=1.0 if cfg.calibrate else checkpoint.temperature(ckpt, ckpt_path),
        calibrate=bool(cfg.calibrate),
        loggers=trainer.loggers,
    )
    for logger in trainer.loggers:
        logger.finalize("success")
    if cfg.calibrate:
        calibration.store(ckpt_path, report["temperature"], fitted_on="val")
        log.info("stored temperature %.4f in %s", report["temperature"], ckpt_path)
    summary = {
        k: report[k] for k in ("top1", "top5", "balanced_accuracy", "macro_f1", "nll", "ece")
    }
    record = {"ckpt_path": str(ckpt_path), "split": cfg.split, **metrics, "report": summary}
    checkpoint.write_metrics(run_dir, record)
    return metrics


@command("eval")
def _main(cfg: DictConfig) -> None:
    metrics = evaluate(cfg)
    log.info("metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    report = Path(cfg.paths.output_dir) / "eval" / cfg.split
    say(f"report: {report}/ ({', '.join(eval_report.FILES)})")


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

"""The evaluation report of one split, from a network and its datamodule: what `eval` runs after
Lightning's test loop, and what training runs after testing its best checkpoint. Optionally fits
a calibration temperature on the validation split first."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from cnnlab.analysis import eval_report, evaluation
from cnnlab.training.calibration import fit_temperature

log = logging.getLogger(__name__)


def _loader(dm, split: str):
    return dm.test_dataloader() if split == "test" else dm.val_dataloader()


def report(
    net: nn.Module,
    dm,
    split: str,
    folder: Path,
    *,
    temperature: float = 1.0,
    calibrate: bool = False,
    loggers=(),
    step: int = 0,
) -> dict:
    """Write `folder/<split>/`; with `calibrate`, the temperature fitted on the validation split
    is applied and its effect (NLL and ECE before and after, on `split`) recorded."""
    device = next(net.parameters()).device
    collected = evaluation.collect(net, _loader(dm, split), dm.preprocess, device)
    extra = {}
    if calibrate:
        val = (
            collected
            if split == "val"
            else evaluation.collect(net, dm.val_dataloader(), dm.preprocess, device)
        )
        temperature = fit_temperature(val.logits, val.targets)
        logits, targets = collected.logits, collected.targets
        extra["calibration"] = {
            "fitted_on": f"val ({len(val.targets)} images)",
            "temperature": temperature,
            "before": _nll_ece(logits, targets),
            "after": _nll_ece(logits / temperature, targets),
        }
        log.info(
            "calibration: temperature %.4f (fitted on val); %s: %s → %s",
            temperature,
            split,
            extra["calibration"]["before"],
            extra["calibration"]["after"],
        )
    return eval_report.write(
        folder, split, collected, dm.class_names, dm.to_unit,
        temperature=temperature, extra=extra, loggers=loggers, step=step,
    )  # fmt: skip


def _nll_ece(logits, targets) -> dict[str, float]:
    import torch.nn.functional as F

    return {
        "nll": round(float(F.cross_entropy(logits, targets)), 6),
        "ece": round(evaluation.ece(logits, targets), 6),
    }

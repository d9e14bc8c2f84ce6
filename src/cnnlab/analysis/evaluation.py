"""The evaluation report's numbers: logits of a whole split collected once, then top-1, top-5,
balanced accuracy, per-class and macro precision/recall/F1, NLL, expected calibration error and
the confusion matrix, all from torchmetrics' functional API."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

ECE_BINS = 15  # equal-width confidence bins (Guo et al. 2017)
KEEP_MISTAKES = 64  # the most confident mistakes whose images are kept for the grid


@dataclass
class Collected:
    logits: torch.Tensor  # (N, classes) float32, on the CPU, before any temperature
    targets: torch.Tensor  # (N,) int64
    mistakes: list[tuple[float, torch.Tensor, int, int]]  # (confidence, uint8 image, true, pred)


@torch.no_grad()
def collect(net: nn.Module, loader, preprocess, device: torch.device) -> Collected:
    """Run the network over a loader of (uint8 images, targets) in eval mode."""
    was_training = net.training
    net.eval()
    logits, targets, mistakes = [], [], []
    for images, batch_targets in loader:
        out = net(preprocess(images.to(device))).float().cpu()
        batch_targets = torch.as_tensor(batch_targets)
        logits.append(out)
        targets.append(batch_targets)
        conf, pred = out.softmax(1).max(1)
        for i in torch.nonzero(pred != batch_targets).flatten().tolist():
            mistakes.append((float(conf[i]), images[i].cpu(), int(batch_targets[i]), int(pred[i])))
        mistakes = sorted(mistakes, key=lambda m: -m[0])[:KEEP_MISTAKES]
    net.train(was_training)
    return Collected(torch.cat(logits), torch.cat(targets), mistakes)


def metrics(logits: torch.Tensor, targets: torch.Tensor, names: list[str]) -> dict:
    """Every number of `eval/<split>/metrics.json` (macro: the mean over classes with images)."""
    n = len(names)
    probs = logits.softmax(1)
    per_class = {
        name: fn(probs, targets, num_classes=n, average="none")
        for name, fn in (
            ("precision", multiclass_precision),
            ("recall", multiclass_recall),
            ("f1", multiclass_f1_score),
        )
    }
    support = torch.bincount(targets, minlength=n)
    present = support > 0
    return {
        "images": len(targets),
        "top1": float(multiclass_accuracy(probs, targets, num_classes=n, average="micro")),
        "top5": float(
            multiclass_accuracy(probs, targets, num_classes=n, top_k=min(5, n), average="micro")
        ),
        "balanced_accuracy": float(per_class["recall"][present].mean()),
        **{f"macro_{k}": float(v[present].mean()) for k, v in per_class.items()},
        "nll": float(F.cross_entropy(logits, targets)),
        "ece": ece(logits, targets),
        "per_class": {
            names[c]: {"support": int(support[c]), **{k: float(v[c]) for k, v in per_class.items()}}
            for c in range(n)
        },
    }


def ece(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return float(
        multiclass_calibration_error(
            logits.softmax(1), targets, num_classes=logits.shape[1], n_bins=ECE_BINS, norm="l1"
        )
    )


def confusion(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(classes, classes) counts: rows the true class, columns the predicted one."""
    return multiclass_confusion_matrix(logits.argmax(1), targets, num_classes=logits.shape[1])


def reliability(logits: torch.Tensor, targets: torch.Tensor) -> list[tuple[float, float, int]]:
    """Per confidence bin: (bin centre, accuracy, images); empty bins are left out."""
    conf, pred = logits.softmax(1).max(1)
    hits = (pred == targets).float()
    bins = torch.clamp((conf * ECE_BINS).long(), max=ECE_BINS - 1)
    return [
        ((b + 0.5) / ECE_BINS, float(hits[bins == b].mean()), int((bins == b).sum()))
        for b in range(ECE_BINS)
        if (bins == b).any()
    ]

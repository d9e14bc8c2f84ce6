"""`classifier=knn | logistic`: a head fitted on the frozen backbone's kept features in one go
(no epochs), put in place of the network's head, and saved as a normal cnnlab checkpoint, so
eval, predict, export, explain, the demo page and `cnnlab.load` use it like any other.

- `logistic`: multinomial logistic regression by L-BFGS on standardised features, for each L2
  strength in `classifier.l2` (strongest first, each warm-started from the last); the one with
  the best validation accuracy is kept, the standardisation folded into the linear head.
- `knn`: the training features are the bank of a `models.knn_head.KNNHead` (cosine similarity,
  DINO's exp(similarity / temperature) votes); `classifier.k` may list several k, the best on
  validation is kept."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig, open_dict
from torch import nn
from torch.nn import functional as F
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from cnnlab.core import checkpoint
from cnnlab.core.checkpoint_io import AtomicCheckpointIO
from cnnlab.core.metric_names import EVAL_METRICS
from cnnlab.models.build import head_name
from cnnlab.models.knn_head import KNNHead
from cnnlab.training import build, cached_probe, calibration, eval_pass

log = logging.getLogger(__name__)

FITTED = ("knn", "logistic")  # the classifiers fitted here; `linear` trains with the Trainer


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple | ListConfig) else [value]


def fit_logistic(x, y, vx, vy, num_classes: int, l2s: list[float], max_iter: int):
    """Returns (nn.Linear on raw features, chosen L2, {l2: val acc})."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z, vz = (x - mean) / std, (vx - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    scores, best = {}, None
    for l2 in sorted(l2s, reverse=True):  # strongest first: each start is the last solution
        opt = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure(l2=l2, opt=opt):
            opt.zero_grad()
            loss = F.cross_entropy(z @ weight.T + bias, y) + 0.5 * l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            scores[l2] = float(((vz @ weight.T + bias).argmax(1) == vy).float().mean())
            if best is None or scores[l2] > scores[best[0]]:
                best = (l2, weight.detach().clone(), bias.detach().clone())
    l2, w, b = best
    head = nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        head.weight.copy_(w / std)
        head.bias.copy_(b - (w * (mean / std)).sum(1))
    return head, l2, scores


def fit_knn(x, y, vx, vy, num_classes: int, ks: list[int], temperature: float):
    """Returns (KNNHead, chosen k, {k: val acc})."""
    head = KNNHead.from_features(x, y, num_classes, ks[0], temperature)
    scores = {}
    for k in ks:
        head.k = min(k, len(x))
        scores[k] = float((_logits(head, vx).argmax(1) == vy).float().mean())
    chosen = max(ks, key=lambda k: scores[k])  # the first of equals, as before
    head.k = min(chosen, len(x))
    return head, chosen, scores


@torch.no_grad()
def _logits(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([head(chunk) for chunk in x.split(1024)])


def scores(logits, targets, stage: str, smoothing: float) -> dict[str, float]:
    """The metrics the module logs for a split (`EVAL_METRICS`), from its logits."""
    c = logits.shape[1]
    values = {
        "loss": F.cross_entropy(logits, targets, label_smoothing=smoothing),
        "acc": multiclass_accuracy(logits, targets, c, average="micro"),
        "acc5": multiclass_accuracy(logits, targets, c, top_k=min(5, c), average="micro"),
        "balanced_acc": multiclass_accuracy(logits, targets, c, average="macro"),
        "macro_f1": multiclass_f1_score(logits, targets, c, average="macro"),
    }
    return {f"{stage}/{name}": float(values[name]) for name in EVAL_METRICS}


def _fit(spec: DictConfig, train, val, classes: int) -> tuple[nn.Module, str, Any]:
    """The head `spec.kind` names, fitted on `train` and chosen on `val` ((features, labels)
    each); returns (head, the swept setting's name, the value kept)."""
    if spec.kind == "knn":
        ks = [int(k) for k in _as_list(spec.k)]
        head, chosen, swept = fit_knn(*train, *val, classes, ks, float(spec.temperature))
        what = "k"
    else:
        l2s = [float(v) for v in _as_list(spec.l2)]
        head, chosen, swept = fit_logistic(*train, *val, classes, l2s, int(spec.max_iter))
        what = "l2"
    log.info("classifier=%s: validation accuracy by %s: %s; kept %s=%s", spec.kind, what,
             ", ".join(f"{k}: {v:.4f}" for k, v in swept.items()), what, chosen)  # fmt: skip
    return head, what, chosen


def run(cfg: DictConfig, dm, net: nn.Module, verbose: bool = True):
    """Embed (or read back) every split, fit the head, save the checkpoint, test and report;
    returns (metrics, objects built) as `training.fit.fit_and_test` does."""
    started = time.perf_counter()
    dm.setup("fit")
    head = head_name(cfg.model, net)
    emb = cached_probe.embedder(cfg, dm, net, head)
    kept = cached_probe.keep(emb, dm, given=cfg.classifier.get("features"))
    (x, y), (vx, vy), (tx, ty) = (kept[s].tensors() for s in cached_probe.SPLITS)
    spec = cfg.classifier
    fitted, what, chosen = _fit(spec, (x, y), (vx, vy), int(dm.num_classes))
    net.set_submodule(head, fitted)
    smoothing = float(cfg.module.label_smoothing)
    metrics = {**scores(_logits(fitted, vx), vy, "val", smoothing),
               **scores(_logits(fitted, tx), ty, "test", smoothing)}  # fmt: skip
    metrics["val/acc_best"] = metrics["val/acc"]
    with open_dict(cfg):  # what rebuilds the head from the checkpoint alone
        cfg.classifier[what] = chosen
        if spec.kind == "knn":
            cfg.classifier.bank_size, cfg.classifier.feature_dim = int(x.shape[0]), int(x.shape[1])
    run_dir = Path(cfg.paths.output_dir)
    ckpt_path = _save(cfg, net, dm, metrics, run_dir)
    if verbose:
        print(f"classifier={spec.kind}: test/acc {metrics['test/acc']:.4f}, val/acc "
              f"{metrics['val/acc']:.4f} ({what}={chosen})")  # fmt: skip
    _log_and_report(cfg, net, dm, metrics, ckpt_path)
    record = {**metrics, "params": sum(p.numel() for p in net.parameters()), "best_epoch": 0,
              "epochs": 0, "train_images": len(y), "tested_ckpt": checkpoint.LAST,
              "wall_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    checkpoint.write_metrics(run_dir, record)
    return metrics, {"net": net, "datamodule": dm}


def _log_and_report(cfg: DictConfig, net: nn.Module, dm, metrics: dict, ckpt: Path) -> None:
    """The numbers to the loggers; the test split's evaluation report (and, with `calibrate`,
    the temperature stored in the checkpoint), as a trained run writes them."""
    loggers = list(build.loggers(cfg).values())
    for logger in loggers:
        logger.log_metrics(metrics, step=0)
    if cfg.get("eval_report", True):
        calibrate = bool(cfg.get("calibrate"))
        folder = Path(cfg.paths.output_dir) / "eval"
        report = eval_pass.report(net, dm, "test", folder, calibrate=calibrate, loggers=loggers)
        if calibrate:
            calibration.store(ckpt, report["temperature"], fitted_on="val")
    for logger in loggers:
        logger.finalize("success")
        if hasattr(logger, "close"):
            logger.close()


def _save(cfg: DictConfig, net: nn.Module, dm, metrics: dict[str, float], run_dir: Path) -> Path:
    """last.ckpt (and best.ckpt, the same file): the contract `cnnlab.load` and eval read."""
    ckpt: dict[str, Any] = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": L.__version__,
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "hyper_parameters": {
            "num_classes": int(dm.num_classes),
            "label_smoothing": float(cfg.module.label_smoothing),
            "config": build.plain(cfg),
        },  # fmt: skip
    }
    checkpoint.put_run_state(ckpt, dm.class_names, {"val/acc": metrics["val/acc"], "epoch": 0})
    io = AtomicCheckpointIO()
    last = checkpoint.in_run(run_dir, checkpoint.LAST)
    io.save_checkpoint(ckpt, last)
    io.save_checkpoint(ckpt, checkpoint.in_run(run_dir, checkpoint.BEST))  # a link to last
    return last

"""Temperature scaling (Guo et al. 2017): one scalar T divides the logits, fitted on the
validation split by minimising its NLL. The predicted class never changes (argmax of z/T is the
argmax of z); only how sure the probabilities say the network is."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.core import checkpoint
from cnnlab.core.checkpoint_io import AtomicCheckpointIO


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The T > 0 that minimises NLL(softmax(logits / T), targets)."""
    log_t = torch.zeros(1, requires_grad=True)  # T = exp(log_t) stays positive
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    logits, targets = logits.detach().float(), targets.long()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def store(path: Path, temperature: float, fitted_on: str) -> None:
    """Write the temperature into the checkpoint (atomically), where `cnnlab.load`, `predict`
    and `export` read it."""
    ckpt = checkpoint.load(path)
    checkpoint.put_temperature(ckpt, temperature, fitted_on)
    AtomicCheckpointIO().save_checkpoint(ckpt, path)

"""Checkpoints edited as a hand (or an attacker) would: copies of the shared digits checkpoint
with one thing changed, for the security tests and the documented-lines test."""

from __future__ import annotations

import math
from pathlib import Path

import torch

CKPT = Path("checkpoints") / "best.ckpt"


def edited(digits_run: Path, out: Path, edit) -> Path:
    """A copy of the shared digits checkpoint with `edit(ckpt)` applied."""
    ckpt = torch.load(digits_run / CKPT, weights_only=True)
    edit(ckpt)
    torch.save(ckpt, out)
    return out


def inject(where: str, marker: Path):
    """An edit that puts `os.system("touch marker")` at a dotted key of the stored config."""

    def edit(ckpt):
        node = ckpt["hyper_parameters"]["config"]
        *parents, last = where.split(".")
        for key in parents:
            node = node[key]
        if last == "_target_":  # the node itself becomes the call
            node.clear()
            node.update({"_target_": "os.system", "command": f"touch {marker}"})
        else:
            node[last] = {"_target_": "os.system", "command": f"touch {marker}"}

    return edit


def setting(key, value):
    """An edit that sets one of the checkpoint's own keys."""

    def edit(ckpt):
        ckpt[key] = value

    return edit


def nan_weight(ckpt):
    ckpt["state_dict"]["net.features.0.weight"].fill_(math.nan)

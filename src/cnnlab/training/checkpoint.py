"""Reading checkpoints safely: always `weights_only=True`, and one-line errors for bad files."""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import UserError


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint or state dict without ever executing code stored in it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    if not _torch_save_file(path):
        raise UserError(f"{path} is not a checkpoint (not a file written by torch.save)")
    try:
        with warnings.catch_warnings():  # the one error line below says it all
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused a global: code or foreign objects
        text = str(err)
        refused = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", text)
        other = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        what = (
            f"it holds {refused.group(1)}"
            if refused
            else f"it holds pickled code ({other.group(1).strip()})"
            if other
            else "it holds objects"
        )
        raise UserError(
            f"{path} is unsafe or not a checkpoint: {what}, which weights_only=True refuses to "
            f"load (nothing in it was run)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        reason = first.split(". This is an internal")[0].rstrip(".")  # torch's advice follows
        raise UserError(f"{path} is truncated or not a checkpoint ({reason})") from None


def _torch_save_file(path: Path) -> bool:
    """torch.save writes a zip archive (since torch 1.6) or, before that, a pickle (b'\\x80')."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head.startswith(b"PK") or head.startswith(b"\x80") or not head


def run_config(ckpt: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The resolved training config stored by ClassifierModule."""
    config = ckpt.get("hyper_parameters", {}).get("config")
    if not config or "model" not in config:
        raise UserError(f"{path} has no cnnlab training config; was it written by cnnlab.train?")
    return config


def network_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's own state dict inside a ClassifierModule checkpoint (`net.*` keys)."""
    return {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}


def temperature(ckpt: dict[str, Any]) -> float:
    """The calibration temperature `eval calibrate=true` stored (1.0: uncalibrated)."""
    return float((ckpt.get("calibration") or {}).get("temperature", 1.0))


def rebase(tree: Any, old: str, new: str) -> Any:
    """Replace the prefix `old` by `new` in every string: data folders of the training machine."""
    if isinstance(tree, dict):
        return {k: rebase(v, old, new) for k, v in tree.items()}
    if isinstance(tree, list):
        return [rebase(v, old, new) for v in tree]
    if isinstance(tree, str) and old and tree.startswith(old):
        return new + tree[len(old) :]
    return tree


def mismatch(own: dict, state: dict, ignore=lambda key: False) -> str:
    """One line naming the missing, unexpected and mis-shaped keys ('' when they all fit)."""
    keys = [k for k in own if not ignore(k)]
    groups = (
        ("missing", [k for k in keys if k not in state]),
        ("unexpected", [k for k in state if k not in own and not ignore(k)]),
        (
            "shape mismatches",
            [
                f"{k} {tuple(state[k].shape)}≠{tuple(own[k].shape)}"
                for k in keys
                if k in state and state[k].shape != own[k].shape
            ],
        ),
    )
    return "; ".join(
        f"{len(x)} {name}: {', '.join(x[:4])}{' …' if len(x) > 4 else ''}"
        for name, x in groups
        if x
    )


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load a full state dict strictly; any mismatch is reported in one summary line."""
    problems = mismatch(module.state_dict(), state)
    if problems:
        raise UserError(f"{path} does not fit this model ({problems})")
    module.load_state_dict(state)

"""The run folder and checkpoint contract: every file name and checkpoint key cnnlab writes is
named here, and read or written through the functions below. Checkpoints are always read with
`weights_only=True`, with one-line errors for bad files; they are written by
`core.checkpoint_io.AtomicCheckpointIO` (atomic, fsynced).

A run folder (`paths.output_dir`) holds `checkpoints/{best,last,on_exception}.ckpt`, Lightning's
SLURM requeue checkpoint `hpc_ckpt_<n>.ckpt`, `metrics.json` (the run's final numbers) and `.lock`
(the holder's pid and start time; the command using the folder holds an OS lock on it,
core.run_lock). A checkpoint is Lightning's dict (`state_dict` with the network under `net.`,
`epoch`, `global_step`, optimizer and callback states, `hyper_parameters.config`: the resolved
run config as plain containers) plus cnnlab's keys below.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.core import targets
from cnnlab.core.errors import UserError
from cnnlab.core.files import write_atomic

if TYPE_CHECKING:
    import torch

CHECKPOINTS = "checkpoints"  # the run folder's checkpoint folder
BEST, LAST, ON_EXCEPTION = "best.ckpt", "last.ckpt", "on_exception.ckpt"
HPC = "hpc_ckpt_*.ckpt"  # Lightning's, in the run folder, on SIGUSR1 before SLURM requeues a job
METRICS = "metrics.json"
LOCK = ".lock"
# cnnlab's keys in a checkpoint
CLASS_NAMES = "class_names"  # the data's class names: predict and explain label without the data
BEST_SO_FAR = "best_so_far"  # {"val/acc", "epoch"}: val/acc_best and best_epoch survive a resume
CALIBRATION = "calibration"  # {"temperature", "fitted_on"}: `eval calibrate=true`
TRACKING_RUNS = "tracking_runs"  # logger name → MLflow / W&B run id, continued on a resume


def is_weights_file(weights: str | None) -> bool:
    """`model.weights` names a file (a checkpoint or state dict), not a library's weights name."""
    return bool(weights) and (
        "/" in str(weights) or Path(str(weights)).suffix in (".ckpt", ".pt", ".pth", ".bin")
    )


def in_run(run_dir: str | Path, name: str = LAST) -> Path:
    """The path of checkpoint `name` (BEST, LAST, ON_EXCEPTION) in a run folder."""
    return Path(run_dir) / CHECKPOINTS / name


def latest(run_dir: Path) -> Path | None:
    """The newest of a run folder's last.ckpt, on_exception.ckpt and SLURM's hpc_ckpt_N.ckpt
    (Lightning saves that one on SIGUSR1 before requeueing the job)."""
    found = [p for p in (in_run(run_dir, LAST), in_run(run_dir, ON_EXCEPTION)) if p.is_file()]
    found += list(Path(run_dir).glob(HPC))
    return max(found, key=lambda p: p.stat().st_mtime_ns, default=None)


def write_metrics(run_dir: str | Path, numbers: dict[str, Any]) -> Path:
    """The run's final numbers, `metrics.json`, written whole or not at all."""
    out = Path(run_dir) / METRICS
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, json.dumps(numbers, indent=2))
    return out


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """`metrics.json` of a run folder; {} for a run that has not finished."""
    record = Path(run_dir) / METRICS
    return json.loads(record.read_text()) if record.is_file() else {}


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint or state dict without ever executing code stored in it."""
    import torch  # here: the names above are read by commands that answer before torch loads

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


def stored_config(
    ckpt: dict[str, Any] | None, source: str | Path = "the checkpoint", config_dirs=(), also=()
) -> dict[str, Any]:
    """The resolved training config stored by ClassifierModule ({} when there is none), with
    every `_target_` in it checked against cnnlab's builders (`core.targets`): a file is data,
    and a target that is not cnnlab's is one UserError line before anything is imported."""
    config = ((ckpt or {}).get("hyper_parameters") or {}).get("config") or {}
    if not isinstance(config, dict):
        raise UserError(f"{source} holds a training config that is not a mapping")
    return targets.checked(config, source, config_dirs, also) if config else {}


def run_config(ckpt: dict[str, Any], path: str | Path, config_dirs=(), also=()) -> dict[str, Any]:
    """The checked training config stored by ClassifierModule; UserError when missing."""
    config = stored_config(ckpt, path, config_dirs, also)
    if not config or not isinstance(config.get("model"), dict):
        raise UserError(
            f"{path} has no cnnlab training config; was it written by cnnlab.commands.train?"
        )
    return config


def module_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The LightningModule's state dict ({} when the file holds none)."""
    return ckpt.get("state_dict", {})


def trained_state(ckpt: dict[str, Any], path: str | Path) -> dict[str, torch.Tensor]:
    """The module's state dict of a checkpoint used for answers (eval, predict, cnnlab.load):
    present, and every weight finite (a NaN weight would answer "nan" for every image)."""
    import torch

    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise UserError(f"{path} has no state_dict (the trained weights); it cannot be used")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise UserError(f"{path}: state_dict[{key!r}] is not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise UserError(
                f"{path}: state_dict[{key!r}] holds NaN or infinite weights; use a checkpoint "
                f"saved before the values went bad (last.ckpt or an earlier run)"
            )
    return state


def network_state(ckpt: dict[str, Any], path: str | Path) -> dict[str, torch.Tensor]:
    """The network's own state dict inside a ClassifierModule checkpoint (`net.*` keys), checked
    as `trained_state` checks it."""
    return {k[4:]: v for k, v in trained_state(ckpt, path).items() if k.startswith("net.")}


def class_names(ckpt: dict[str, Any], num_classes: int, path: str | Path) -> list[str]:
    """The stored class names, or "0", "1", … for a checkpoint written without data names; a
    list that does not match the head's classes is one UserError line."""
    names = ckpt.get(CLASS_NAMES)
    if not names:
        return [str(i) for i in range(num_classes)]
    if not isinstance(names, list | tuple) or len(names) != num_classes:
        count = len(names) if isinstance(names, list | tuple) else type(names).__name__
        raise UserError(
            f"{path}: {CLASS_NAMES} has {count} entries but the network has {num_classes} "
            f"classes; the file was edited or damaged"
        )
    return [str(n) for n in names]


def put_run_state(ckpt: dict[str, Any], names: list[str] | None, best: dict[str, Any]) -> None:
    """What ClassifierModule adds to each checkpoint it saves: the class names, the running best."""
    if names:
        ckpt[CLASS_NAMES] = list(names)
    ckpt[BEST_SO_FAR] = best


def best_so_far(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    return ckpt.get(BEST_SO_FAR)


def temperature(ckpt: dict[str, Any], path: str | Path) -> float:
    """The calibration temperature `eval calibrate=true` stored (1.0: uncalibrated); one that is
    not a finite number > 0 (every probability NaN, or the ranking inverted) is one line."""
    value = (ckpt.get(CALIBRATION) or {}).get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise UserError(
            f"{path}: {CALIBRATION}.temperature={value!r} is not a finite number > 0; fit it "
            f'again with make eval ARGS="ckpt_path={path} calibrate=true"'
        )
    return float(value)


def put_temperature(ckpt: dict[str, Any], temperature: float, fitted_on: str) -> None:
    ckpt[CALIBRATION] = {"temperature": temperature, "fitted_on": fitted_on}


def tracking_runs(ckpt: dict[str, Any] | None) -> dict[str, str] | None:
    """Logger name → the MLflow / W&B run id a resume continues."""
    return (ckpt or {}).get(TRACKING_RUNS)


def put_tracking_runs(ckpt: dict[str, Any], runs: dict[str, str]) -> None:
    ckpt[TRACKING_RUNS] = runs


def rebase(tree: Any, old: str, new: str) -> Any:
    """Replace the prefix `old` by `new` in every string: data folders of the training machine."""
    if isinstance(tree, dict):  # a builder's name is never a path: checked, never rewritten
        return {k: v if k == "_target_" else rebase(v, old, new) for k, v in tree.items()}
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

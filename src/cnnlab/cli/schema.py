"""Types of the config values users override most, so `trainer.max_epochs=abc` fails before
anything runs with one line naming the key, instead of a crash deep inside Lightning.

The YAML files stay the source of the values; these dataclasses only say what type each known
key must have. Groups keep any further keys (each optimizer has its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cnnlab.cli import machine
from cnnlab.errors import UserError
from cnnlab.training.metric_names import monitorable


@dataclass
class TrainerSchema:
    max_epochs: int | None = None
    min_epochs: int | None = None
    max_steps: int = -1
    num_nodes: int = 1
    check_val_every_n_epoch: int | None = 1
    log_every_n_steps: int = 50
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    deterministic: Any = False
    benchmark: bool | None = None
    sync_batchnorm: bool = False
    num_sanity_val_steps: int = 2
    overfit_batches: float = 0.0


@dataclass
class OptimizerSchema:
    lr: Any = 1e-3  # a number, or "auto": the learning-rate range test picks it
    weight_decay: float = 0.0


@dataclass
class DataSchema:
    name: str = ""
    num_classes: int = 0
    in_channels: int = 0
    image_size: int = 0
    input_size: int | None = None  # null: the larger of image_size and the model's minimum
    batch_size: int = 1
    eval_batch_size: int | None = None
    val_fraction: float = 0.1
    train_limit: int | None = None
    num_workers: int = 0
    pin_memory: Any = "auto"  # true, false, or auto (pinned when training on a CUDA GPU)
    seed: int = 0


@dataclass
class ModuleSchema:
    label_smoothing: float = 0.0
    channels_last: bool = False
    compile: bool = False


@dataclass
class RootSchema:
    task_name: str = "train"
    seed: int = 0
    ckpt_path: str | None = None
    run_id: str | None = None
    test: bool = True
    test_ckpt: str = "best"
    eval_report: bool = True
    calibrate: bool = False
    decay_norm_and_bias: bool = False
    module: ModuleSchema | None = None
    trainer: TrainerSchema = field(default_factory=TrainerSchema)
    optimizer: OptimizerSchema | None = None
    data: DataSchema | None = None


def _known(node: DictConfig, schema: type) -> DictConfig:
    """The keys of `node` that `schema` types, nested groups included; other keys are left out."""
    keys = [k for k in schema.__dataclass_fields__ if k in node]
    out = OmegaConf.masked_copy(node, keys)
    for key in keys:
        sub = _SUBSCHEMAS.get((schema, key))
        if (
            sub is not None
            and isinstance(node._get_node(key), DictConfig)
            and node[key] is not None
        ):
            out[key] = _known(node[key], sub)
    return out


_SUBSCHEMAS = {
    (RootSchema, "trainer"): TrainerSchema,
    (RootSchema, "optimizer"): OptimizerSchema,
    (RootSchema, "data"): DataSchema,
    (RootSchema, "module"): ModuleSchema,
}


def validate(cfg: DictConfig) -> None:
    """Raise UserError naming the first key whose value has the wrong type."""
    try:
        OmegaConf.merge(OmegaConf.structured(RootSchema), _known(cfg, RootSchema))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or "?"
        msg = str(err).splitlines()[0]
        raise UserError(f"{key}: {msg}") from None
    check_ranges(cfg)


def _whole(low: int, *also: int):
    def check(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and (v >= low or v in also)

    return check


def _between(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    """low ≤ v ≤ high (or < where open), and never inf or nan, whatever the bounds."""

    def check(v) -> bool:
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            return False
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    return check


def _optional(check):
    return lambda v: v is None or check(v)


PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "mixed", "16-true", "bf16-true",
              "64", "32", "16", "bf16", 64, 32, 16)  # fmt: skip
POSITIVE = (_between(0, float("inf"), low_open=True), "a finite number > 0")
NON_NEGATIVE = (_between(0, float("inf")), "a finite number ≥ 0")
# Bounds past which a value is a typo, not an experiment: a learning rate or weight decay above
# 10 diverges on every network here; images larger than 4096 px a side would need ≥ 200 MB per
# float32 RGB image before the network sees it.
MAX_LR = MAX_WEIGHT_DECAY = 10.0
MIN_IMAGE, MAX_IMAGE = 8, 4096  # pixels per side; below 8 a picture holds too little (MNIST: 28)
# key → (check, what is valid): every numeric key users set, answered before anything runs.
RANGES = {
    "seed": (_whole(0), "a whole number ≥ 0"),
    "test_ckpt": (lambda v: v in ("best", "last"), "best or last"),
    "data.batch_size": (_whole(1), "a whole number ≥ 1"),
    "data.eval_batch_size": (_optional(_whole(1)), "a whole number ≥ 1, or null"),
    "data.num_workers": (_whole(0), "a whole number ≥ 0"),
    "data.val_fraction": (
        _between(0, 1, low_open=True, high_open=True),
        "between 0 and 1, exclusive",
    ),
    "data.train_limit": (_optional(_whole(1)), "a whole number ≥ 1, or null"),
    "data.num_classes": (_whole(1), "a whole number ≥ 1"),
    "data.in_channels": (_whole(1), "a whole number ≥ 1"),
    "data.image_size": (
        lambda v: _whole(MIN_IMAGE)(v) and v <= MAX_IMAGE,
        f"a whole number of pixels from {MIN_IMAGE} to {MAX_IMAGE}",
    ),
    "data.input_size": (
        _optional(lambda v: _whole(1)(v) and v <= MAX_IMAGE),
        f"a whole number of pixels up to {MAX_IMAGE}, or null",
    ),
    "data.imbalance": (_optional(_between(0, 1, low_open=True)), "in (0, 1], or null"),
    "data.folds": (_optional(_whole(2)), "a whole number ≥ 2, or null"),
    "data.fold": (_whole(0), "a whole number ≥ 0 (below data.folds)"),
    "optimizer.lr": (
        lambda v: v == "auto" or _between(0, MAX_LR, low_open=True)(v),
        f"a number > 0 and ≤ {MAX_LR:g}, or auto (the learning-rate range test)",
    ),
    "optimizer.weight_decay": (
        _between(0, MAX_WEIGHT_DECAY),
        f"a number in [0, {MAX_WEIGHT_DECAY:g}]",
    ),
    "optimizer.momentum": (_between(0, 1, high_open=True), "in [0, 1)"),
    "module.label_smoothing": (_between(0, 1, high_open=True), "in [0, 1)"),
    "freeze.backbone_lr_ratio": NON_NEGATIVE,
    "trainer.max_epochs": (_optional(_whole(1, -1)), "a whole number ≥ 1, or -1 (no limit)"),
    "trainer.min_epochs": (_optional(_whole(0)), "a whole number ≥ 0, or null"),
    "trainer.max_steps": (_whole(1, -1), "a whole number ≥ 1, or -1 (no limit)"),
    "trainer.accumulate_grad_batches": (_whole(1), "a whole number ≥ 1"),
    "trainer.log_every_n_steps": (_whole(1), "a whole number ≥ 1"),
    "trainer.num_nodes": (_whole(1), "a whole number ≥ 1"),
    "trainer.num_sanity_val_steps": (_whole(0, -1), "a whole number ≥ 0, or -1 (all)"),
    "trainer.check_val_every_n_epoch": (_optional(_whole(1)), "a whole number ≥ 1, or null"),
    "trainer.gradient_clip_val": (_optional(POSITIVE[0]), "a number > 0, or null"),
    "trainer.precision": (
        lambda v: v in PRECISIONS or v is None,
        ", ".join(map(str, PRECISIONS[:7])),
    ),
    "augment.sample.num_ops": (_whole(0), "a whole number ≥ 0"),
    "augment.sample.magnitude": (_between(0, 30), "in [0, 30]"),
    "augment.sample.severity": (_between(1, 10), "in [1, 10]"),
    "augment.sample.random_erasing": (_between(0, 1), "a probability in [0, 1]"),
    "augment.batch.degrees": (_between(0, 180), "degrees in [0, 180]"),
    "augment.batch.padding": (_whole(0), "a whole number ≥ 0"),
    "augment.mix.mixup_alpha": NON_NEGATIVE,
    "augment.mix.cutmix_alpha": NON_NEGATIVE,
    "augment.mix.prob": (_between(0, 1), "a probability in [0, 1]"),
    "augment.mix.switch_prob": (_between(0, 1), "a probability in [0, 1]"),
    "augment.batch.translate": (_between(0, 1), "a fraction in [0, 1]"),
    "scheduler.warmup_fraction": (_between(0, 1, high_open=True), "in [0, 1)"),
    "scheduler.min_lr_ratio": (_between(0, 1), "in [0, 1]"),
    "scheduler.pct_start": (_between(0, 1, low_open=True, high_open=True), "in (0, 1)"),
    "scheduler.div_factor": POSITIVE,
    "scheduler.final_div_factor": POSITIVE,
    "scheduler.step_size": (_whole(1), "a whole number ≥ 1"),
    "scheduler.gamma": POSITIVE,
    "scheduler.factor": (_between(0, 1, low_open=True, high_open=True), "in (0, 1)"),
    "scheduler.patience": (_whole(0), "a whole number ≥ 0"),
    "freeze.strategy.unfreeze_at_epoch": (_whole(0), "a whole number ≥ 0"),
    "freeze.strategy.stage_interval": (_whole(1), "a whole number ≥ 1"),
    "nonfinite.max_skips": (_whole(0), "a whole number ≥ 0"),
    "callbacks.gradcam.every_n_epochs": (_whole(1), "a whole number ≥ 1"),
    "callbacks.gradcam.num_images": (_whole(1), "a whole number ≥ 1"),
    "callbacks.diagnostics.every_n_epochs": (_whole(0), "a whole number ≥ 0 (0: after the last)"),
    "callbacks.model_checkpoint.every_n_train_steps": (
        _optional(_whole(1)),
        "a whole number ≥ 1, or null",
    ),
}


def check_ranges(cfg: DictConfig) -> None:
    """Raise UserError naming the first key whose value is outside its valid range."""
    for key, (valid, what) in RANGES.items():
        value = _value(cfg, key)
        if value is _ABSENT:
            continue  # this config has no such key
        if not valid(value):
            raise UserError(f"{key}={value!r} is out of range; valid: {what}")
    _check_input_size(cfg)
    _check_devices(cfg)
    _check_monitors(cfg)


_ABSENT = object()


def _value(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    if value is None and OmegaConf.select(cfg, key, default="absent") == "absent":
        return _ABSENT
    return value


def _check_input_size(cfg: DictConfig) -> None:
    """What the network sees must be at least what it can take (its pooling would reach 0)."""
    size, least = _value(cfg, "data.input_size"), _value(cfg, "model.min_input_size")
    if isinstance(size, int) and isinstance(least, int) and size < least:
        raise UserError(
            f"data.input_size={size} is below this model's minimum input ({least} px, "
            f"model.min_input_size); valid: {least} to {MAX_IMAGE}, or null (the larger of "
            f"data.image_size and the minimum)"
        )


def _check_devices(cfg: DictConfig) -> None:
    """trainer.devices against what this machine has: 99 CPU processes would only hang."""
    devices = _value(cfg, "trainer.devices")
    accelerator = str(_value(cfg, "trainer.accelerator"))
    wanted = machine.device_count(devices)
    if wanted is None:
        return  # auto, -1 (all) or absent
    have, kind = machine.available(accelerator)
    if have is not None and wanted > have:
        raise UserError(
            f"trainer.devices={devices} asks for {wanted} {kind} devices, but this machine has "
            f"{have}; valid: 1 to {have}, auto or -1 (all)"
        )


MONITOR_KEYS = ("callbacks.model_checkpoint.monitor", "callbacks.early_stopping.monitor",
                "scheduler.monitor")  # fmt: skip


OWN = ("cnnlab.", "lightning.", "torch.")  # code whose logged metrics cnnlab knows


def _check_monitors(cfg: DictConfig) -> None:
    """A monitored metric cnnlab never logs would fail after the first epoch's validation. Not
    checked when a user's module or callback (which may log its own metrics) is in the run."""
    callbacks = _value(cfg, "callbacks")
    nodes = callbacks.values() if isinstance(callbacks, DictConfig) else []
    targets = [str(_value(cfg, "module._target_"))] + [
        str(node.get("_target_", "")) for node in nodes
        if isinstance(node, DictConfig) and "_target_" in node
    ]  # fmt: skip
    if any(t != str(_ABSENT) and t and not t.startswith(OWN) for t in targets):
        return
    names = monitorable(gradcam=bool(_value(cfg, "callbacks.gradcam") not in (None, _ABSENT)))
    for key in MONITOR_KEYS:
        value = _value(cfg, key)
        if value is not _ABSENT and value is not None and value not in names:
            raise UserError(
                f"{key}={value!r} is not a metric cnnlab logs; valid: {', '.join(names)}"
            )

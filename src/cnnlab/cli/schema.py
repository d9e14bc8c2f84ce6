"""The config check every command runs first (`validate`): one table, `RULES`, says for each key
users set what values are valid, type and range together; a value outside it stops the command
with one line naming the key and what is valid, before torch loads and anything runs. The YAML
files are the only source of default values; a key a config does not have is not checked.
Commands add their own keys (`COMMAND_RULES`, chosen by the config's `task_name`), and so do
networks (`NETWORK_RULES`, by `model.net._target_`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from cnnlab.cli import machine
from cnnlab.core import choices, extras
from cnnlab.core.errors import UserError
from cnnlab.core.metric_names import monitorable

Rule = tuple[Callable[[Any], bool], str]  # (is this value valid?, what is valid, said in the error)


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


def _is(*types: type) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, types) and (bool in types or not isinstance(v, bool))


def _each(check):
    """One value, or a non-empty list whose every value passes `check` (a sweep in one run)."""
    return lambda v: (
        check(v) or (isinstance(v, list | tuple | ListConfig) and bool(v) and all(map(check, v)))
    )


def one_of(options: tuple) -> Rule:
    return (lambda v: v in options, f"choose one of: {', '.join(map(str, options))}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "mixed", "16-true", "bf16-true",
              "64", "32", "16", "bf16", 64, 32, 16)  # fmt: skip
POSITIVE = (_between(0, float("inf"), low_open=True), "a finite number > 0")
NON_NEGATIVE = (_between(0, float("inf")), "a finite number ≥ 0")
BOOL = (_is(bool), "true or false")
NAME = (_optional(_is(str, int)), "a name, or null")
# Bounds past which a value is a typo, not an experiment: a learning rate or weight decay above
# 10 diverges on every network here; images larger than 4096 px a side would need ≥ 200 MB per
# float32 RGB image before the network sees it.
MAX_LR = MAX_WEIGHT_DECAY = 10.0
MIN_IMAGE, MAX_IMAGE = 8, 4096  # pixels per side; below 8 a picture holds too little (MNIST: 28)
# key → (check, what is valid): every key users set, answered before anything runs.
RULES: dict[str, Rule] = {
    "seed": (_whole(0), "a whole number ≥ 0"),
    "test_ckpt": one_of(choices.TEST_CKPTS),
    "test": BOOL,
    "eval_report": BOOL,
    "calibrate": BOOL,
    "optimizer.decay_norm_and_bias": BOOL,
    "run_id": NAME,
    "data.name": (_is(str), "a name"),
    "data.seed": (_whole(0), "a whole number ≥ 0"),
    "data.pin_memory": (lambda v: v in (True, False, "auto"), "true, false or auto"),
    "data.decode": one_of(choices.DECODERS),
    "data.normalize": one_of(choices.NORMALIZE),
    "data.balance": one_of(choices.BALANCE),
    "callbacks.nonfinite.policy": one_of(choices.NONFINITE_POLICIES),
    "callbacks.gradcam.method": one_of(choices.CAM_METHODS),
    "data.on_bad_image": one_of(choices.BAD_IMAGE_MODES),
    "module.channels_last": BOOL,
    "module.compile": BOOL,
    "trainer.sync_batchnorm": BOOL,
    "trainer.benchmark": (_optional(_is(bool)), "true, false or null"),
    "trainer.overfit_batches": NON_NEGATIVE,
    "data.batch_size": (_whole(1), "a whole number ≥ 1"),
    "data.eval_batch_size": (_optional(_whole(1)), "a whole number ≥ 1, or null"),
    "data.num_workers": (_whole(0), "a whole number ≥ 0"),
    "data.val_fraction": (
        _between(0, 1, low_open=True, high_open=True),
        "between 0 and 1, exclusive",
    ),
    "data.train_limit": (_optional(_whole(1)), "a whole number ≥ 1, or null"),
    "data.num_classes": (_optional(_whole(1)), "a whole number ≥ 1, or null (from the data)"),
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
    "callbacks.nonfinite.max_skips": (_whole(0), "a whole number ≥ 0"),
    "callbacks.gradcam.every_n_epochs": (_whole(1), "a whole number ≥ 1"),
    "callbacks.gradcam.num_images": (_whole(1), "a whole number ≥ 1"),
    "callbacks.diagnostics.every_n_epochs": (_whole(0), "a whole number ≥ 0 (0: after the last)"),
    "callbacks.model_checkpoint.every_n_train_steps": (
        _optional(_whole(1)),
        "a whole number ≥ 1, or null",
    ),
    "freeze.cache": BOOL,
    "classifier.kind": one_of(choices.CLASSIFIERS),
    "classifier.k": (_each(_whole(1)), "a whole number ≥ 1, or a list of them"),
    "classifier.temperature": (_between(0, math.inf, low_open=True), "a number > 0"),
    "classifier.l2": (_each(_between(0, math.inf)), "a number ≥ 0, or a list of them"),
    "classifier.max_iter": (_whole(1), "a whole number ≥ 1"),
}

WHOLE_1 = (_whole(1), "a whole number ≥ 1")
PORT = (lambda v: _whole(1)(v) and v <= 65535, "a port number from 1 to 65535")
# The keys only one network's config has, by its model.net._target_.
NETWORK_RULES: dict[str, dict[str, Rule]] = {
    "cnnlab.models.convnet.ConvNet": {
        "model.net.norm": (lambda v: v is None or v in choices.CONVNET_NORMS,
                           f"{', '.join(choices.CONVNET_NORMS)}, or null"),
        "model.net.pool": one_of(choices.CONVNET_POOLS),
    },
    "cnnlab.models.lenet.LeNet5": {
        "model.net.activation": one_of(choices.LENET_ACTIVATIONS),
        "model.net.pool": one_of(choices.LENET_POOLS),
    },
}  # fmt: skip
# The keys only one command's config has, by its task_name.
COMMAND_RULES: dict[str, dict[str, Rule]] = {
    "eval": {"split": one_of(choices.SPLITS)},
    "predict": {
        "topk": WHOLE_1,
        "batch_size": WHOLE_1,
        "tta": one_of(choices.TTA),
        "on_bad_image": one_of(choices.BAD_IMAGE_MODES),
        "device": one_of(choices.DEVICES),
    },
    "explain": {
        "method": one_of(choices.CAM_METHODS),
        "batch_size": WHOLE_1,
        "on_bad_image": one_of(choices.BAD_IMAGE_MODES),
        "limit": (_optional(_whole(1)), "a whole number ≥ 1, or null"),
    },  # fmt: skip
    "export": {
        "format": one_of(choices.EXPORT_FORMATS),
        "parity_images": WHOLE_1,
        "tolerance": NON_NEGATIVE,  # 0: bit-exact
        "min_agreement": (_between(0, 1), "a share in [0, 1]"),
        "calibration_images": WHOLE_1,
    },  # fmt: skip
    "demo": {"port": PORT, "examples": (_whole(0), "a whole number ≥ 0"), "share": BOOL},
    "playground": {
        "port": PORT,
        "test_images": (_whole(0), "a whole number ≥ 0"),
        "tab": one_of(choices.PLAYGROUND_TABS),
    },
    "embed": {"dtype": one_of(choices.FEATURE_DTYPES)},
    "summary": {"format": one_of(choices.SUMMARY_FORMATS), "batch_size": WHOLE_1},
    "shards": {
        "max_side": (_optional(_whole(32)), "a whole number of pixels ≥ 32, or null"),
        "quality": (lambda v: _whole(1)(v) and v <= 100, "a JPEG quality from 1 to 100"),
        "chunk_mb": WHOLE_1,
        "on_bad_image": one_of(choices.BAD_IMAGE_MODES),
    },
}


def validate(cfg: DictConfig) -> None:
    """Raise UserError naming the first key whose value is not valid, then check what depends on
    several keys or on the machine (input size, devices, monitored metrics)."""
    task = OmegaConf.select(cfg, "task_name", default=None)
    network = OmegaConf.select(cfg, "model.net._target_", default=None)
    rules = {**RULES, **COMMAND_RULES.get(str(task), {}), **NETWORK_RULES.get(str(network), {})}
    for key, (valid, what) in rules.items():
        value = _value(cfg, key)
        if value is _ABSENT:
            continue  # this config has no such key
        if not valid(value):
            verdict = "is out of range" if _number(value) else "is not valid"
            said = what if what.startswith("choose") else f"valid: {what}"
            raise UserError(f"{key}={value!r} {verdict}; {said}")
    extras.check(cfg)
    _check_given(cfg)
    _check_folds(cfg)
    _check_input_size(cfg)
    _check_devices(cfg)
    _check_monitors(cfg)


_ABSENT = object()


def _value(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    if value is None and OmegaConf.select(cfg, key, default="absent") == "absent":
        return _ABSENT
    return value


def _check_given(cfg: DictConfig) -> None:
    """A ??? value the user must give (an image folder's root, a checkpoint): named here, since a
    builder's partial would otherwise drop it silently and fail later with a traceback."""
    missing = next(_missing(cfg, ""), None)
    if missing:
        raise UserError(f"Missing mandatory value: {missing}")


def _missing(node: DictConfig, prefix: str):
    """Dotted keys whose value is ???, without resolving any interpolation (some need Hydra's
    runtime, which a checked config may not have yet)."""
    for key in node.keys():
        if OmegaConf.is_interpolation(node, key):
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            yield from _missing(child, f"{prefix}{key}.")
        elif OmegaConf.is_missing(node, key):
            yield f"{prefix}{key}"


def _check_folds(cfg: DictConfig) -> None:
    folds, fold = _value(cfg, "data.folds"), _value(cfg, "data.fold")
    if isinstance(folds, int) and isinstance(fold, int) and fold >= folds:
        raise UserError(f"data.fold={fold} is out of range; valid: 0 to {folds - 1} "
                        f"(below data.folds={folds})")  # fmt: skip


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

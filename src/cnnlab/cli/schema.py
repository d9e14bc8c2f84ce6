"""Types of the config values users override most, so `trainer.max_epochs=abc` fails before
anything runs with one line naming the key, instead of a crash deep inside Lightning.

The YAML files stay the source of the values; these dataclasses only say what type each known
key must have. Groups keep any further keys (each optimizer has its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cnnlab.errors import UserError


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
    lr: float = 1e-3
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
    pin_memory: bool = False
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

"""`freeze=linear_probe` on kept features: when nothing random happens before the head while
training (no augmentation, no dropout or stochastic depth in the frozen backbone), the backbone's
answer for an image is the same every epoch, so it is computed once (`features.embed`, kept under
a fingerprint and reused by later runs) and the head trains on it. The Trainer, the optimizer,
the schedule, the seed and the loaders' draws are those of the uncached probe, so the head ends
with the same weights to float tolerance; the checkpoint holds the whole network as usual.

Callbacks that need pictures (Grad-CAM, diagnostics, the augmentation grid) still get them: the
feature data answers every question but its loaders from the image datamodule it wraps."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig
from torch import nn

from cnnlab.core.errors import UserError
from cnnlab.data.datamodule import ClassificationDataModule
from cnnlab.features.embed import Embedder, not_one_linear, preprocessing_record
from cnnlab.features.store import SplitFeatures
from cnnlab.models.anatomy import in_head
from cnnlab.models.build import head_name
from cnnlab.training.finetune import LinearProbe

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class FeatureRows(torch.utils.data.Dataset):
    """A split's kept features and labels, batched by indexing as in-memory images are."""

    in_memory = True

    def __init__(self, features: torch.Tensor, targets: torch.Tensor):
        self.features, self.targets = features, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.features[i], self.targets[i]

    def __getitems__(self, indices: list[int]):
        return self.features[indices], self.targets[indices]


class SeedsOnce(torch.utils.data.DataLoader):
    """A loader that draws its iterator's base seed from torch's generator at the first epoch
    only, as a loader with persistent workers does (its workers, seeded once, live on): the
    feature rows then get the same shuffles, epoch after epoch, as the images would."""

    _drawn = False

    def __iter__(self):
        if not self._drawn:
            self._drawn = True
            return super().__iter__()
        state = torch.random.get_rng_state()
        iterator = super().__iter__()  # draws the base seed; the sampler draws at the first batch
        torch.random.set_rng_state(state)
        return iterator


class FeatureData(L.LightningDataModule):
    """The loaders of `images`, over features instead of pictures; everything else is theirs."""

    def __init__(self, images: ClassificationDataModule, kept: dict[str, SplitFeatures]):
        super().__init__()
        self.images = images
        self.rows = {}
        for split, store in kept.items():
            self.rows[split] = FeatureRows(*store.tensors())

    def __getattr__(self, name: str):
        images = self.__dict__.get("images")
        if images is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(images, name)

    def _loader(self, split: str, images) -> torch.utils.data.DataLoader:
        loader = self.images.loader(self.rows[split], split)
        if not images.in_memory and self.images.num_workers > 0:
            loader.__class__ = SeedsOnce  # the images' loader keeps its workers: draw like it
        return loader

    def train_dataloader(self):
        return self._loader("train", self.images.train_set)

    def val_dataloader(self):
        return self._loader("val", self.images.val_set)

    def test_dataloader(self):
        return self.images.loader(self.rows["test"], "test")


def _random_before_head(net: nn.Module, head: str) -> list[str]:
    """Modules of the backbone that draw random numbers in training mode."""
    found = []
    for name, m in net.named_modules():
        if not name or in_head(name, head):
            continue
        p = getattr(m, "p", None) if isinstance(m, nn.modules.dropout._DropoutNd) else None
        p = getattr(m, "drop_prob", p)  # timm's DropPath (stochastic depth)
        if isinstance(p, float) and p > 0:
            found.append(name)
    return found


def _processes(trainer_cfg) -> int:
    devices, nodes = trainer_cfg.get("devices", 1), int(trainer_cfg.get("num_nodes", 1) or 1)
    count = len(devices) if isinstance(devices, list | tuple | ListConfig) else devices
    return (count if isinstance(count, int) and count > 0 else 1) * nodes


def why_not(cfg: DictConfig, dm: ClassificationDataModule, net: nn.Module, head: str):
    """Why the backbone must run on every batch, or None when its features can be kept."""
    processes = _processes(cfg.get("trainer") or {})
    if processes > 1:  # each rank would embed every image into the same folders at once
        return (
            f"training runs in {processes} processes (DDP), each of which would embed every image"
        )
    steps = {"sample": dm.sample_augment, "train_crop": dm.train_crop,
             "batch": dm.batch_augment, "mix": dm.mix}  # fmt: skip
    augments = [name for name, step in steps.items() if step is not None]
    if augments:
        return (
            f"training augmentation is on ({', '.join(augments)}): every epoch feeds other "
            f"pixels, so there is no one feature per image to keep (augment=none keeps them)"
        )
    random = _random_before_head(net, head)
    if random:
        return (f"the frozen backbone draws random numbers while training ({random[0]}: "
                f"dropout or stochastic depth), so its features differ every epoch")  # fmt: skip
    if getattr(dm.train_set, "streaming", False):
        return "streaming shards are read once per epoch, not indexed"
    return not_one_linear(net, head)


def embedder(cfg: DictConfig, dm: ClassificationDataModule, net: nn.Module, head: str,
             dtype: str = "float32") -> Embedder:  # fmt: skip
    prep = preprocessing_record(dm.preprocessing, dm.image_size, dm.in_channels)
    prep["eval_resize"] = (cfg.data.get("source") or {}).get("eval_resize")  # files' eval crop
    return Embedder(net, head, prep, dtype=dtype, data=dm.name,
                    cache=Path(str(cfg.paths.feature_cache)),
                    describe={"model": str(cfg.model.get("name") or cfg.model.net._target_),
                              "weights": cfg.model.get("weights")})  # fmt: skip


def keep(emb: Embedder, dm: ClassificationDataModule, channels_last: bool = False,
         given: str | None = None):  # fmt: skip
    """Every split's features, embedded or read back: {split: SplitFeatures}; `given`: a folder
    `make embed` wrote, used as it is when its features are this run's."""

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = dm.preprocess(x)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def batches(images):
        return dm.loader(images, "test")

    sets = {"train": dm.train_set, "val": dm.val_set, "test": dm.test_set}
    if given:
        return {split: emb.given(split, sets[split], Path(given)) for split in SPLITS}
    # Each loader draws a seed from torch's generator: kept or computed, the features leave the
    # training's draws (shuffles, dropout in the head) as they would be without them.
    with torch.random.fork_rng(devices=[]):
        return {split: emb.split(split, sets[split], batches, prepare) for split in SPLITS}


def use(cfg: DictConfig, model, dm: ClassificationDataModule, strategy) -> L.LightningDataModule:
    """The data the probe trains on: kept features when it can (and `model._forward` becomes the
    head alone), else `dm` unchanged; one log line says which and why."""
    if not isinstance(strategy, LinearProbe) or not (cfg.get("freeze") or {}).get("cache", True):
        return dm
    dm.setup("fit")
    head = head_name(cfg.model, model.net)
    reason = why_not(cfg, dm, model.net, head)
    required = (cfg.get("classifier") or {}).get("kind") == "linear"
    if reason is not None:
        if required:
            raise UserError(f"classifier=linear trains on kept features, but {reason}")
        log.info("freeze=linear_probe: the backbone runs on every batch: %s", reason)
        return dm
    emb = embedder(cfg, dm, model.net, head)
    kept = keep(emb, dm, model.channels_last, (cfg.get("classifier") or {}).get("features"))
    model.__dict__["_forward"] = model.net.get_submodule(head)  # features in, logits out
    log.info("freeze=linear_probe: the frozen backbone ran once per image (features kept in "
             "%s); the head trains on its features", emb.cache)  # fmt: skip
    return FeatureData(dm, kept)

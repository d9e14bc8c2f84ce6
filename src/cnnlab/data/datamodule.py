"""One LightningDataModule for image classification, whatever the source.

Every source yields an `ImageSet` of uint8 images; conversion to float, batch augmentation and
normalisation happen once per batch, on the device, in `on_after_batch_transfer`, with the
`Preprocessing` decided before the datamodule was built. Eval batches are never augmented.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from cnnlab.core.errors import UserError
from cnnlab.core.preprocessing import Preprocessing
from cnnlab.data import decode as decoding
from cnnlab.data import sanity, splits
from cnnlab.data.image_set import ImageSet, seeded_sample, seeded_split
from cnnlab.data.sources import SourceData
from cnnlab.data.tensor_dataset import collate_batched

log = logging.getLogger(__name__)


class ClassificationDataModule(L.LightningDataModule):
    def __init__(
        self,
        source: Callable[[], SourceData],
        *,
        name: str,
        num_classes: int | None,  # None: as many as the data names
        in_channels: int,
        image_size: int,
        preprocessing: Preprocessing,
        batch_size: int,
        eval_batch_size: int | None,
        val_fraction: float,
        train_limit: int | None = None,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        seed: int = 0,
        sanity_report: bool = True,
        augment: dict[str, Any] | None = None,
        on_bad_image: str = "fail",  # image folders: their source reads it (data.on_bad_image)
        decode: str = "auto",  # training crops of files: cnnlab.core.choices.DECODERS
        balance: str = "none",  # none | sampler | loss (the module reads class_weights)
        imbalance: float | None = None,  # long-tailed training split: smallest/largest class
        folds: int | None = None,  # k-fold: the train pool in `folds` stratified folds,
        fold: int = 0,  # of which this one validates
    ):
        super().__init__()
        self.balance, self.imbalance, self.folds, self.fold = balance, imbalance, folds, fold
        self.decode = decode
        self.source = source
        self.name = name
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.image_size = image_size
        self.preprocessing = preprocessing
        self.input_size = preprocessing.input_size  # what the network sees, pixels per side
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction = val_fraction
        self.train_limit = train_limit
        self.sanity_report = sanity_report
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        augment = dict(augment or {})
        self.sample_augment = augment.get("sample")  # per image, uint8, where data is fetched
        self.train_crop = augment.get("train_crop")  # image folders: replaces resize + center crop
        self.batch_augment = augment.get("batch")  # per batch, float [0, 1], on the device
        self.mix = augment.get("mix")  # MixUp/CutMix on normalised batches
        self.class_names: list[str] = []
        self.train_set: ImageSet | None = None
        self.val_set: ImageSet | None = None
        self.test_set: ImageSet | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        data = self.source()
        found = len(data.class_names)
        if self.num_classes is None:
            self.num_classes = found
        elif found != self.num_classes:
            raise UserError(
                f"data.num_classes={self.num_classes} but data={self.name} has {found} classes; "
                f"valid: {found}, or null (taken from the data)"
            )
        self.class_names = data.class_names
        if self.folds:  # the validation split is fold `fold` of the whole pool
            pool = data.train if data.val is None else data.train.concat(data.val)
            parts = splits.stratified_folds(pool.targets, self.folds, self.seed)
            rest = torch.cat([p for i, p in enumerate(parts) if i != self.fold]).sort().values
            self.train_set, self.val_set = pool.subset(rest), pool.subset(parts[self.fold])
        elif data.val is not None:
            self.train_set, self.val_set = data.train, data.val
        else:
            self.train_set, self.val_set = self._split(data.train)
        self.test_set = data.test if data.test is not None else self.val_set
        self._check_channels(self.train_set)
        if self.train_limit and self.train_limit < len(self.train_set):
            # seed + 1: the subset is not the validation split's permutation
            idx = seeded_sample(len(self.train_set), self.train_limit, self.seed + 1)
            self.train_set = self.train_set.subset(idx)
        if self.imbalance is not None:  # seed + 2: independent of the split and the limit
            idx = splits.long_tail(self.train_set.targets, float(self.imbalance), self.seed + 2)
            self.train_set = self.train_set.subset(idx)
        if self.sanity_report:
            sanity.log_report(
                {"train": self.train_set, "val": self.val_set, "test": self.test_set},
                self.class_names,
            )
        if self.decode == "gpu" and not torch.cuda.is_available():
            log.warning("data.decode=gpu: no CUDA device here; decoding on the CPU (auto)")
            self.decode = "auto"
        if self.sample_augment is not None or self.train_crop is not None or self.decode != "auto":
            self.train_set = self.train_set.for_training(
                self.sample_augment, self.train_crop, self.decode
            )

    def _check_channels(self, images: ImageSet) -> None:
        """Files are read as RGB: a network built for another channel count would stop at its
        first convolution with a traceback."""
        if len(images) == 0:
            return
        found = int(images[0][0].shape[0])
        if found != self.in_channels:
            raise UserError(
                f"data.in_channels={self.in_channels} but data={self.name} gives {found}-channel "
                f"images (files are read as RGB); valid: data.in_channels={found}"
            )

    def _split(self, pool: ImageSet) -> tuple[ImageSet, ImageSet]:
        train_idx, val_idx = seeded_split(len(pool), self.val_fraction, self.seed)
        return pool.subset(train_idx), pool.subset(val_idx)

    def _loader(self, ds: ImageSet, *, shuffle: bool, batch_size: int, sampler=None) -> DataLoader:
        in_memory = ds.in_memory
        workers = 0 if in_memory else self.num_workers  # indexing a tensor needs no worker
        gpu = ds is self.train_set and self.decode == "gpu"
        if getattr(ds, "streaming", False):  # shards: LitData's loader
            if sampler is not None:
                raise UserError("data.balance=sampler needs an image folder or in-memory data; "
                                "with data=shards use data.balance=loss")  # fmt: skip
            world = self.trainer.world_size if self.trainer is not None else 1
            return ds.loader(batch_size=batch_size, workers=workers, pin_memory=self._pinned(),
                             seed=self.seed, shuffle=shuffle, world=world,
                             collate_fn=decoding.collate if gpu else None)  # fmt: skip
        return DataLoader(
            ds,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self._pinned(),
            persistent_workers=workers > 0,
            collate_fn=collate_batched if in_memory else (decoding.collate if gpu else None),
            drop_last=False,
        )

    def _pinned(self) -> bool:
        """pin_memory=auto: pinned batches when training on a CUDA GPU (their copy to the device
        then does not hold the host back), not elsewhere (pinning costs host time for nothing)."""
        if self.pin_memory != "auto":
            return bool(self.pin_memory)
        trainer = self.trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_set, "train")

    def loader(self, ds, split: str) -> DataLoader:
        """The loader of a split's rows: training's shuffles (or balances) in batches of
        `batch_size`; the others keep their order. Frozen features (`training.cached_probe`)
        go through it too: the same draws from the same seed give the same batches."""
        if split != "train":
            return self._loader(ds, shuffle=False, batch_size=self.eval_batch_size)
        if self.balance == "sampler":  # each class drawn about equally often, with replacement
            weights = splits.balanced_weights(ds.targets, self.num_classes)
            sampler = WeightedRandomSampler(
                weights[ds.targets], num_samples=len(ds), replacement=True
            )
            return self._loader(ds, shuffle=False, batch_size=self.batch_size, sampler=sampler)
        return self._loader(ds, shuffle=True, batch_size=self.batch_size)

    def class_weights(self) -> torch.Tensor | None:
        """Loss weights per class from the training split's counts (`data.balance=loss`)."""
        if self.balance != "loss":
            return None
        return splits.balanced_weights(self.train_set.targets, self.num_classes)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.val_set, "val")

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.test_set, "test")

    @property
    def mean(self) -> torch.Tensor:
        return torch.tensor(self.preprocessing.mean).view(1, -1, 1, 1)

    @property
    def std(self) -> torch.Tensor:
        return torch.tensor(self.preprocessing.std).view(1, -1, 1, 1)

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images → float in [0, 1] at the network's input size."""
        return self.preprocessing.to_unit(images)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.preprocessing.normalize(x)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Eval preprocessing of uint8 (N, C, H, W) images: what `explain` and CAMs feed the net."""
        return self.preprocessing(images)

    def train_batch(self, images: torch.Tensor, targets: torch.Tensor):
        """uint8 batch → augmented, normalised floats (and soft targets under MixUp/CutMix)."""
        x = self.to_unit(images)
        if self.batch_augment is not None:
            x = self.batch_augment(x)
        x = self.normalize(x)
        if self.mix is not None:
            x, targets = self.mix(x, targets)
        return x, targets

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        images, targets = batch
        if isinstance(images, list):  # data.decode=gpu: nvJPEG reads bytes from the host
            device = self.trainer.strategy.root_device
            images = decoding.gpu_batch(images, self.image_size, self.sample_augment, device)
        return images, targets

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, targets = batch
        if self.trainer is not None and self.trainer.training:
            return self.train_batch(images, targets)
        return self.preprocess(images), targets

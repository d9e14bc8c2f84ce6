"""One LightningDataModule for image classification, whatever the source.

Every source yields uint8 images; conversion to float, batch augmentation and normalisation
happen once per batch, on the device, in `on_after_batch_transfer`. Eval batches are never
augmented.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from cnnlab.data import sanity
from cnnlab.data.sources import SourceData
from cnnlab.data.tensor_dataset import TensorImages, collate_batched
from cnnlab.errors import UserError


class ClassificationDataModule(L.LightningDataModule):
    def __init__(
        self,
        source: Callable[[], SourceData],
        *,
        name: str,
        num_classes: int,
        in_channels: int,
        image_size: int,
        input_size: int | None = None,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        train_limit: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        normalize: str = "auto",
        sanity_report: bool = True,
        augment: dict[str, Any] | None = None,
        on_bad_image: str = "fail",  # image folders: their source reads it (data.on_bad_image)
    ):
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"data.val_fraction={val_fraction} must be between 0 and 1 (exclusive)")
        if len(mean) != in_channels or len(std) != in_channels:
            raise UserError(
                f"data.mean/std have {len(mean)}/{len(std)} values, "
                f"but data.in_channels={in_channels}"
            )
        self.source = source
        self.name = name
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.image_size = image_size
        self.input_size = input_size or image_size
        if normalize not in ("auto", "dataset"):
            raise UserError(f"data.normalize={normalize!r} is not valid; choose auto or dataset")
        self.set_statistics(mean, std)
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
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        data = self.source()
        if len(data.class_names) != self.num_classes:
            raise UserError(
                f"data.num_classes={self.num_classes} but data={self.name} has "
                f"{len(data.class_names)} classes"
            )
        self.class_names = data.class_names
        if data.val is not None:
            self.train_set, self.val_set = data.train, data.val
        else:
            self.train_set, self.val_set = self._split(data.train)
        self.test_set = data.test
        if self.train_limit and self.train_limit < len(self.train_set):
            self.train_set = self._take(self.train_set, self.train_limit)
        if self.sanity_report:
            sanity.log_report(
                {"train": self.train_set, "val": self.val_set, "test": self.test_set},
                self.class_names,
            )
        self.train_set = self._with_train_transforms(self.train_set)

    def _with_train_transforms(self, ds: Dataset) -> Dataset:
        if self.sample_augment is None and self.train_crop is None:
            return ds
        if isinstance(ds, TensorImages):
            out = TensorImages(ds.images, ds.targets, ds.class_names, transform=self.sample_augment)
            out.boxes = ds.boxes
            return out
        from cnnlab.data.folder import train_view

        return train_view(ds, self.image_size, self.train_crop, self.sample_augment)

    def _take(self, ds: Dataset, n: int) -> Dataset:
        # A seeded random subset: small-budget experiments (e.g. 500 images) see all classes.
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(self.seed + 1))[:n]
        idx = idx.sort().values
        return (
            ds.subset(idx)
            if isinstance(ds, TensorImages)
            else torch.utils.data.Subset(ds, idx.tolist())
        )

    def _split(self, pool: Dataset) -> tuple[Dataset, Dataset]:
        # Seeded, so every run (and every DDP rank) sees the same validation images.
        n_val = max(1, round(len(pool) * self.val_fraction))
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(self.seed))
        val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
        if isinstance(pool, TensorImages):
            return pool.subset(train_idx), pool.subset(val_idx)
        return (
            torch.utils.data.Subset(pool, train_idx.tolist()),
            torch.utils.data.Subset(pool, val_idx.tolist()),
        )

    def _loader(self, ds: Dataset, *, shuffle: bool, batch_size: int) -> DataLoader:
        in_memory = isinstance(ds, TensorImages)
        workers = 0 if in_memory else self.num_workers  # indexing a tensor needs no worker
        return DataLoader(
            ds,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0,
            collate_fn=collate_batched if in_memory else None,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False, batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False, batch_size=self.eval_batch_size)

    def set_statistics(self, mean, std) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images → float in [0, 1] at the network's input size."""
        x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=x.shape[-1] > self.input_size,
            )
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] → the normalised tensors the network expects."""
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Eval preprocessing of uint8 (N, C, H, W) images: what `explain` and CAMs feed the net."""
        return self.normalize(self.to_unit(images))

    def train_batch(self, images: torch.Tensor, targets: torch.Tensor):
        """uint8 batch → augmented, normalised floats (and soft targets under MixUp/CutMix)."""
        x = self.to_unit(images)
        if self.batch_augment is not None:
            x = self.batch_augment(x)
        x = self.normalize(x)
        if self.mix is not None:
            x, targets = self.mix(x, targets)
        return x, targets

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, targets = batch
        if self.trainer is not None and self.trainer.training:
            return self.train_batch(images, targets)
        return self.preprocess(images), targets

"""In-memory image datasets: uint8 tensors, fetched a whole batch at a time."""

from __future__ import annotations

import hashlib

import torch
from torch.utils.data import Dataset


class TensorImages(Dataset):
    """uint8 images (N, C, H, W) and int64 targets (N,), kept in memory as they are on disk.

    `__getitems__` lets the DataLoader fetch a batch with one indexing op instead of N
    `__getitem__` calls plus a collate (a large share of the step for MNIST-sized images).
    """

    in_memory = True

    def __init__(
        self, images: torch.Tensor, targets: torch.Tensor, class_names: list[str], transform=None
    ):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images.contiguous()
        self.targets = targets.long()
        self.class_names = list(class_names)
        self.transform = transform  # per-image uint8 → uint8 policy (training split only)
        self.boxes: torch.Tensor | None = None  # (N, 4) object boxes x0, y0, x1, y1 when known

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.targets[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices)
        images = self.images[idx]
        if self.transform is not None:
            images = torch.stack([self.transform(img) for img in images])
        return images, self.targets[idx]

    def subset(self, indices: torch.Tensor) -> TensorImages:
        out = TensorImages(
            self.images[indices], self.targets[indices], self.class_names, self.transform
        )
        out.boxes = self.boxes[indices] if self.boxes is not None else None
        return out

    def concat(self, other: TensorImages) -> TensorImages:
        out = TensorImages(
            torch.cat([self.images, other.images]),
            torch.cat([self.targets, other.targets]),
            self.class_names,
            self.transform,
        )
        if self.boxes is not None and other.boxes is not None:
            out.boxes = torch.cat([self.boxes, other.boxes])
        return out

    def for_training(self, sample, crop, decoder: str = "auto") -> TensorImages:
        # `crop` and `decoder` are for files; in-memory images are decoded and sized already
        out = TensorImages(self.images, self.targets, self.class_names, transform=sample)
        out.boxes = self.boxes
        return out

    def as_tensors(self, limit: int) -> TensorImages:
        return self  # already in memory: every image

    def quick_keys(self) -> list[str]:
        return [self.content_hash(i) for i in range(len(self.images))]  # in memory: cheap

    def content_hash(self, i: int) -> str:
        return hashlib.sha1(self.images[i].numpy().tobytes()).hexdigest()

    def file_summary(self) -> str:
        return ""


def collate_batched(batch):
    """Collate for datasets whose `__getitems__` already returns a stacked batch."""
    if isinstance(batch, tuple):
        return batch
    return torch.utils.data.default_collate(batch)

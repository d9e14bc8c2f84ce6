"""The one interface every dataset source returns, in memory (`TensorImages`) or on disk
(`FolderImages`), so the datamodule and the callbacks never ask which kind they hold; and the one
seeded split helper every split uses.
"""

from __future__ import annotations

from typing import Protocol

import torch


class ImageSet(Protocol):
    class_names: list[str]
    in_memory: bool  # True: a batch is one tensor index (no DataLoader workers needed)
    boxes: torch.Tensor | None  # (N, 4) object boxes x0, y0, x1, y1 when known

    @property
    def targets(self) -> torch.Tensor: ...

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor | int]: ...

    def subset(self, indices: torch.Tensor) -> ImageSet: ...

    def concat(self, other: ImageSet) -> ImageSet:
        """These images, then `other`'s (k-fold pools a source's train and val splits)."""

    def for_training(self, sample, crop, decoder: str = "auto") -> ImageSet:
        """The same images through the training pipeline: `crop` (random resized crop; files
        only), `sample`, a per-image uint8 → uint8 policy, and `decoder` (files only:
        `cnnlab.core.choices.DECODERS`)."""

    def as_tensors(self, limit: int) -> ImageSet:
        """The first `limit` images decoded into memory (callbacks that index many at once)."""

    def quick_keys(self) -> list[str]:
        """A key per image that identical images always share and different ones rarely do (a
        file's size, read from the file system; in memory, the content hash itself): images of
        two splits are compared byte for byte only where their keys meet."""

    def content_hash(self, i: int) -> str:
        """Image `i`'s bytes (a file's, or the pixels in memory), hashed."""

    def file_summary(self) -> str:
        """Sizes and modes of a sample of the files ('' in memory)."""


def seeded_split(
    n: int, fraction: float, seed: int | torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices, sorted: the same validation images for every run with this seed,
    and on every DDP rank. A generator instead of a seed goes on being used by the caller."""
    n_val = max(1, round(n * fraction))
    g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    return order[n_val:].sort().values, order[:n_val].sort().values


def seeded_sample(n: int, k: int, seed: int) -> torch.Tensor:
    """k of n indices, sorted: a small-budget subset that still sees every class."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values

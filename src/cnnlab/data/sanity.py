"""A data sanity report, logged once at setup: class counts per split, image sizes and modes of
image folders (a sample of files), and a warning when validation shares images with training."""

from __future__ import annotations

import logging

import torch

from cnnlab.data.image_set import ImageSet

log = logging.getLogger(__name__)


def class_counts(ds: ImageSet) -> list[int]:
    return torch.bincount(ds.targets.long(), minlength=len(ds.class_names)).tolist()


def report(splits: dict[str, ImageSet], class_names: list[str]) -> list[str]:
    lines = []
    for name, ds in splits.items():
        counts = class_counts(ds)
        files = ds.file_summary()
        lines.append(
            f"{name}: {len(ds)} images, per class min {min(counts)} max {max(counts)}"
            f"{'; ' + files if files else ''}"
        )
        if min(counts) == 0:
            empty = [class_names[i] for i, c in enumerate(counts) if c == 0][:5]
            lines.append(f"WARNING {name} has no images of {empty}")
    shared = shared_images(splits["train"], splits["val"])
    if shared:
        lines.append(
            f"WARNING val shares {shared} images with train: validation accuracy is optimistic"
        )
    return lines


def shared_images(a: ImageSet, b: ImageSet) -> int:
    """How many of `b`'s images are byte for byte one of `a`'s (the same photo under another name
    or in another split's folder counts): hashed only where the cheap keys of the two meet."""
    keys_a, keys_b = a.quick_keys(), b.quick_keys()
    common = set(keys_a) & set(keys_b)
    if not common:
        return 0
    in_a = {a.content_hash(i) for i, key in enumerate(keys_a) if key in common}
    return sum(b.content_hash(i) in in_a for i, key in enumerate(keys_b) if key in common)


def log_report(splits: dict[str, ImageSet], class_names: list[str]) -> None:
    for line in report(splits, class_names):
        (log.warning if line.startswith("WARNING") else log.info)("data %s", line)

"""A data sanity report, logged once at setup: class counts per split, image sizes and modes of
image folders (a sample of files), and a warning when validation shares images with training."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

import torch
from torch.utils.data import Dataset, Subset

from cnnlab.data.tensor_dataset import TensorImages

log = logging.getLogger(__name__)
FILE_SAMPLE = 200  # files opened per folder split for the size/mode summary


def _base(ds: Dataset) -> tuple[Dataset, list[int]]:
    if isinstance(ds, Subset):
        return ds.dataset, list(ds.indices)
    return ds, list(range(len(ds)))


def class_counts(ds: Dataset) -> list[int]:
    base, idx = _base(ds)
    targets = (
        torch.as_tensor(base.targets)[idx]
        if hasattr(base, "targets")
        else torch.tensor([base[i][1] for i in idx])
    )
    return torch.bincount(targets.long(), minlength=len(base.class_names)).tolist()


def fingerprints(ds: Dataset) -> set[str]:
    """Content hashes (in-memory images) or file paths (image folders)."""
    base, idx = _base(ds)
    if isinstance(base, TensorImages):
        return {hashlib.sha1(base.images[i].numpy().tobytes()).hexdigest() for i in idx}
    if hasattr(base, "samples"):
        return {base.samples[i][0] for i in idx}
    return set()


def file_summary(ds: Dataset) -> str:
    from PIL import Image

    base, idx = _base(ds)
    if not hasattr(base, "samples"):
        return ""
    sizes, modes = Counter(), Counter()
    for i in idx[:FILE_SAMPLE]:
        try:
            with Image.open(base.samples[i][0]) as img:
                sizes[img.size] += 1
                modes[img.mode] += 1
        except OSError:
            modes["unreadable"] += 1
    top = ", ".join(f"{w}×{h}: {n}" for (w, h), n in sizes.most_common(3))
    return f"sizes (first {min(len(idx), FILE_SAMPLE)} files) {top}; modes {dict(modes)}"


def report(splits: dict[str, Dataset], class_names: list[str]) -> list[str]:
    lines = []
    for name, ds in splits.items():
        counts = class_counts(ds)
        lines.append(
            f"{name}: {len(ds)} images, per class min {min(counts)} max {max(counts)}"
            f"{'; ' + file_summary(ds) if file_summary(ds) else ''}"
        )
        if min(counts) == 0:
            empty = [class_names[i] for i, c in enumerate(counts) if c == 0][:5]
            lines.append(f"WARNING {name} has no images of {empty}")
    shared = fingerprints(splits["train"]) & fingerprints(splits["val"])
    if shared:
        lines.append(
            f"WARNING val shares {len(shared)} images with train: validation accuracy is optimistic"
        )
    return lines


def log_report(splits: dict[str, Dataset], class_names: list[str]) -> None:
    for line in report(splits, class_names):
        (log.warning if line.startswith("WARNING") else log.info)("data %s", line)

"""Frozen features: what a network's head receives, for every image of a split, computed once
and kept under a fingerprint of everything that decides them, so a probe, a k-NN classifier or
the next run reads them instead of running the backbone again.

The fingerprint of a split's features hashes: the backbone's weights (every tensor of the
network but the head: a weights name, a file, a checkpoint and a seeded random start are told
apart by what they hold), the preprocessing (mean, std, sizes, interpolation), the split's images
(files: path, size, modification time and label; in memory: the pixels and labels) and the
stored precision. Any change makes a new folder; an unchanged one is read back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.core import choices
from cnnlab.core.errors import UserError
from cnnlab.core.preprocessing import Preprocessing
from cnnlab.data.image_set import ImageSet
from cnnlab.features.store import SplitFeatures

log = logging.getLogger(__name__)

# What a split's features are made of, as the mismatch line names it.
MADE_OF = {"backbone": "backbone weights", "preprocessing": "preprocessing", "files": "images",
           "dtype": "precision"}  # fmt: skip
PART_IMAGES = 1024  # rows per part file: what a killed embed can lose at most
DTYPES = {name: np.dtype(name) for name in choices.FEATURE_DTYPES}


def _digest(*chunks: bytes) -> str:
    h = hashlib.blake2b(digest_size=12)
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def not_one_linear(net: nn.Module, head: str) -> str | None:
    """Why the head's input cannot be the features (None when the head is one nn.Linear)."""
    if "," not in head and isinstance(net.get_submodule(head), nn.Linear):
        return None
    return f"model.head={head!r} is not one linear layer, so no one input of it is the features"


def head_module(net: nn.Module, head: str) -> nn.Linear:
    """The network's head, when it is one nn.Linear (what features can stand in front of)."""
    problem = not_one_linear(net, head)
    if problem:
        raise UserError(problem)
    return net.get_submodule(head)


def backbone_digest(net: nn.Module, head: str) -> str:
    h = hashlib.blake2b(digest_size=12)
    for name, tensor in net.state_dict().items():
        if name.startswith(head + "."):
            continue
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)  # 0-d too (num_batches_tracked)
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def preprocessing_record(prep: Preprocessing, image_size: int, in_channels: int) -> dict:
    return {**dataclasses.asdict(prep), "image_size": image_size, "in_channels": in_channels}


def sources(images: ImageSet) -> list[str]:
    """Where each image comes from: its file or data row; in memory, its position."""
    samples = getattr(images, "samples", None)
    return (
        [str(s[0]) for s in samples]
        if samples is not None
        else [str(i) for i in range(len(images))]
    )


def files_digest(images: ImageSet) -> str:
    samples = getattr(images, "samples", None)
    labels = images.targets.numpy().tobytes()
    if samples is None:
        pixels = getattr(images, "images", None)
        if pixels is None:  # shards: the encoded bytes' hashes `make shards` wrote
            keys = "\n".join([str(getattr(images, "path", "")), *images.quick_keys()])
            return _digest(keys.encode(), labels)
        return _digest(pixels.contiguous().numpy().tobytes(), labels)  # in memory: the pixels
    rows, unnamed = [], False
    for path, label in samples:
        try:
            st = os.stat(path)
            rows.append(f"{path}\t{st.st_size}\t{st.st_mtime_ns}\t{label}")
        except OSError:  # a data row (`hf`): its key and label, and below its encoded size
            rows.append(f"{path}\t{label}")
            unnamed = True
    if unnamed:
        rows += images.quick_keys()
    return _digest("\n".join(rows).encode())


@contextmanager
def head_inputs(net: nn.Module, head: str) -> Iterator[list[torch.Tensor]]:
    """While inside, every forward of `net` appends what its head received (flattened)."""
    seen: list[torch.Tensor] = []
    hook = head_module(net, head).register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().flatten(1))
    )
    try:
        yield seen
    finally:
        hook.remove()


@dataclasses.dataclass
class Embedder:
    """A network and the settings its features are kept under."""

    net: nn.Module
    head: str
    preprocessing: dict  # preprocessing_record(...)
    dtype: str = "float32"
    cache: Path = Path("features")
    describe: dict = dataclasses.field(default_factory=dict)  # backbone name, weights: for people
    data: str = "?"  # the dataset's name, for messages
    _backbone: str | None = None

    @property
    def backbone(self) -> str:
        if self._backbone is None:
            self._backbone = backbone_digest(self.net, self.head)
        return self._backbone

    def record(self, split: str, images: ImageSet) -> dict[str, Any]:
        """What made a split's features, as meta.json holds it (JSON's lists, not tuples)."""
        record = {"split": split, "backbone": self.backbone, "preprocessing": self.preprocessing,
                  "files": files_digest(images), "dtype": self.dtype, "images": len(images),
                  **self.describe}  # fmt: skip
        return json.loads(json.dumps(record))

    def folder(self, record: dict[str, Any]) -> Path:
        key = _digest(json.dumps({k: record[k] for k in MADE_OF}, sort_keys=True).encode())
        return self.cache / key

    def split(
        self, split: str, images: ImageSet, batches: Callable[[ImageSet], Any], prepare
    ) -> SplitFeatures:
        """The split's features, read back when kept, else embedded (continuing after the
        parts a killed run finished). `batches(images)` iterates (uint8 images, labels);
        `prepare` turns a uint8 batch into the network's input (eval preprocessing)."""
        if len(images) == 0:
            raise UserError(f"the {split} split of data={self.data} has no images; there is "
                            f"nothing to embed")  # fmt: skip
        record = self.record(split, images)
        store = SplitFeatures(self.folder(record))
        if store.complete:
            log.info("%s: %d features reused from %s", split, len(images), store.folder)
            return store
        done = store.finished_parts()
        if done != list(range(len(done))):
            raise UserError(f"{store.folder}/parts is not a run of whole parts; delete it")
        start = store.rows_in_parts()
        if start:
            log.info("%s: continuing after %d of %d images (%d parts kept)", split, start,
                     len(images), len(done))  # fmt: skip
        self._embed(split, images, start, len(done), store, batches, prepare)
        labels = images.targets.tolist()
        index = [(i, s, int(labels[i]), split) for i, s in enumerate(sources(images))]
        store.finish(index, record)
        return store

    def given(self, split: str, images: ImageSet, folder: Path) -> SplitFeatures:
        """Features `make embed` wrote to `folder`, checked to be this run's (same backbone
        weights, preprocessing, images and precision)."""
        store = SplitFeatures(Path(folder) / split)
        if not store.complete:
            raise UserError(
                f"classifier.features={folder} has no {split}/meta.json; give the features "
                f"folder make embed wrote (<run folder>/features)"
            )
        meta, record = store.meta(), self.record(split, images)
        for key, what in MADE_OF.items():
            theirs, ours = meta.get(key), record[key]
            if theirs != ours:
                if isinstance(ours, dict):  # name the settings that differ
                    theirs, ours = ({k: d.get(k) for k in ours if theirs.get(k) != ours.get(k)}
                                    for d in (theirs, ours))  # fmt: skip
                raise UserError(
                    f"classifier.features={folder}: its {split} features come from other {what} "
                    f"({theirs}) than this run's ({ours}; model {record.get('model')}); embed "
                    f"again with this run's model and data, or drop classifier.features"
                )
        return store

    @torch.no_grad()
    def _embed(self, split, images, start, number, store, batches, prepare) -> None:
        from tqdm.auto import tqdm

        device = next(self.net.parameters()).device
        self.net.eval()
        # Streaming shards are read in order, not indexed: the finished images are skipped.
        streaming = getattr(images, "streaming", False)
        rest = (
            images.subset(torch.arange(start, len(images))) if start and not streaming else images
        )
        skip = start if streaming else 0
        buffered: list[np.ndarray] = []
        embedded = 0
        bar = tqdm(total=len(images), initial=start, desc=f"embed {split}", unit="img",
                   dynamic_ncols=True, leave=False)  # fmt: skip
        with head_inputs(self.net, self.head) as seen, bar:
            for x, _ in batches(rest) if start < len(images) else ():
                x, skip = x[skip:], max(0, skip - len(x))
                if not len(x):
                    continue
                self.net(prepare(x.to(device)))
                buffered.append(seen.pop().float().cpu().numpy().astype(DTYPES[self.dtype]))
                embedded += len(x)
                bar.update(len(x))
                rows = np.concatenate(buffered)
                while len(rows) >= PART_IMAGES:  # every part but the split's last is whole
                    store.write_part(number, rows[:PART_IMAGES])
                    rows, number = rows[PART_IMAGES:], number + 1
                buffered = [rows]
            if buffered and len(buffered[0]):
                store.write_part(number, buffered[0])
            seconds = bar.format_dict["elapsed"]
        log.info("%s: %d images embedded (%.0f images/s)", split, embedded,
                 embedded / max(seconds, 1e-9))  # fmt: skip

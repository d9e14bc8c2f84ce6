"""Frozen features on disk: one folder per split and fingerprint, in plain NumPy and CSV so any
tool reads them (`numpy.load(..., allow_pickle=False)`, `csv`):

    <folder>/features.npy   (N, D) float32 or float16, row i = image i of the split
    <folder>/index.csv      row, source (file path, data row, or position in memory), label, split
    <folder>/meta.json      what made them (written last: its presence means the folder is whole)

While a split is embedded its rows go to `parts/<n>.npy`, each written whole (`core.files`): a
killed embed leaves finished parts and nothing half-written, and the same command continues
after the last finished part. A full disk stops it the same way, with the parts kept."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.core.errors import UserError
from cnnlab.core.files import atomic_file, naming, write_atomic

FEATURES, INDEX, META, PARTS = "features.npy", "index.csv", "meta.json", "parts"
INDEX_COLUMNS = ("row", "source", "label", "split")


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as tmp, naming(path), open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


class SplitFeatures:
    """One split's features in `folder` (see the module's docstring)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @property
    def complete(self) -> bool:
        return (self.folder / META).is_file()

    def finished_parts(self) -> list[int]:
        parts = self.folder / PARTS
        return sorted(int(p.stem) for p in parts.glob("*.npy") if p.stem.isdigit())

    def rows_in_parts(self) -> int:
        """Images the finished parts hold (read from their headers)."""
        parts = self.folder / PARTS
        return sum(
            len(np.load(parts / f"{n:06d}.npy", mmap_mode="r")) for n in self.finished_parts()
        )

    def write_part(self, number: int, rows: np.ndarray) -> None:
        (self.folder / PARTS).mkdir(parents=True, exist_ok=True)
        _save(self.folder / PARTS / f"{number:06d}.npy", rows)

    def finish(self, index: list[tuple[int, str, int, str]], meta: dict[str, Any]) -> None:
        """The parts joined into features.npy, the index beside it, meta.json last; then the
        parts go."""
        parts = [np.load(self.folder / PARTS / f"{n:06d}.npy") for n in self.finished_parts()]
        features = np.concatenate(parts)
        if len(features) != len(index):
            raise UserError(f"{self.folder}: {len(features)} feature rows for {len(index)} images")
        _save(self.folder / FEATURES, features)
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(INDEX_COLUMNS)
        writer.writerows(index)
        write_atomic(self.folder / INDEX, text.getvalue())
        meta = {**meta, "dim": int(features.shape[1])}
        write_atomic(self.folder / META, json.dumps(meta, indent=2))
        shutil.rmtree(self.folder / PARTS, ignore_errors=True)

    def meta(self) -> dict[str, Any]:
        return json.loads((self.folder / META).read_text())

    def tensors(self):
        """(features float32 (N, D), labels int64 (N,)) as torch tensors (what heads train on)."""
        import torch

        features, labels = self.read()
        return torch.from_numpy(features).float(), torch.from_numpy(labels)

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, D), labels (N,)) as stored."""
        features = np.load(self.folder / FEATURES, allow_pickle=False)
        with open(self.folder / INDEX, newline="") as fh:
            labels = np.array([int(row["label"]) for row in csv.DictReader(fh)], dtype=np.int64)
        return features, labels

"""predict's files: `predictions.csv` and `predictions.jsonl` (one row per image), and the files it
did not label (`skipped.csv`: unreadable images; `not_images.txt`). Rows stream to temporary files
(`files.Pending`) renamed into place at the end, so a run that fails leaves no half-written
predictions.

File names are written as the OS gave them, whatever their bytes: the text files keep a name that
is not UTF-8 byte for byte (read them back with `errors="surrogateescape"`), the JSON lines escape
it (`json.loads` then `os.fsencode` gives the bytes back). A full disk names the file it hit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from cnnlab.core.files import Pending, naming

# Undecodable bytes in file names (surrogate-escaped by Python) are written back as those bytes.
NAME_ERRORS = "surrogateescape"

NAMES = ("predictions.csv", "predictions.jsonl", "skipped.csv", "not_images.txt")


class PredictionWriter:
    def __init__(self, folder: Path, class_names: list[str], k: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.class_names, self.k = folder, class_names, k
        self.pending = {name: Pending(folder / name) for name in NAMES}
        self._csv_file = self._jsonl = None
        try:
            with naming(self.pending["predictions.csv"].path):
                self._csv_file = self._open("predictions.csv", newline="")
            with naming(self.pending["predictions.jsonl"].path):
                self._jsonl = self._open("predictions.jsonl")
            self._csv = csv.writer(self._csv_file)
            ranks = [c for r in range(1, k + 1) for c in (f"top{r}", f"top{r}_prob")]
            self._csv.writerow(["path", "label", "pred", "prob", *ranks])
        except BaseException:
            self.abandon()
            raise
        self.skipped: list[tuple[str, str]] = []
        self.not_images: list[Path] = []
        self.count = self.labelled = self.correct = 0

    def label_of(self, path: Path) -> str:
        """The class the image's folder names (photos/cat/1.jpg → cat), else ''."""
        return path.parent.name if path.parent.name in self.class_names else ""

    def rows(self, paths: list[Path], probs: torch.Tensor) -> None:
        top = probs.float().topk(self.k, dim=1)
        ranked_rows = zip(paths, top.values.tolist(), top.indices.tolist(), strict=True)
        for path, values, indices in ranked_rows:
            names = [self.class_names[i] for i in indices]
            label = self.label_of(path)
            self.count += 1
            if label:
                self.labelled += 1
                self.correct += names[0] == label
            ranked = [v for n, p in zip(names, values, strict=True) for v in (n, f"{p:.6f}")]
            with naming(self.pending["predictions.csv"].path):
                self._csv.writerow([str(path), label, names[0], f"{values[0]:.6f}", *ranked])
            topk = [{"class": n, "prob": round(p, 6)} for n, p in zip(names, values, strict=True)]
            record = {"path": str(path), "label": label or None, "pred": names[0],
                      "prob": round(values[0], 6), "topk": topk}  # fmt: skip
            with naming(self.pending["predictions.jsonl"].path):
                self._jsonl.write(json.dumps(record) + "\n")

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def finish(self, not_images: list[Path]) -> None:
        self._close()
        self.not_images = list(not_images)
        with naming(self.pending["skipped.csv"].path), self._open("skipped.csv", newline="") as fh:
            csv.writer(fh).writerows([("path", "reason"), *self.skipped])
        with naming(self.pending["not_images.txt"].path), self._open("not_images.txt") as fh:
            fh.write("".join(f"{p}\n" for p in not_images))
        for pending in self.pending.values():
            pending.commit()

    def abandon(self) -> None:
        try:
            self._close()
        except OSError:
            pass  # a full disk: the buffered rows are going away with their file
        for pending in self.pending.values():
            pending.discard()

    def _open(self, name: str, **kwargs):
        return open(self.pending[name].tmp, "w", encoding="utf-8", errors=NAME_ERRORS, **kwargs)

    def _close(self) -> None:
        """Close both row files (each is closed even when its last write fails: a full disk)."""
        failed = None
        for name, fh in (("predictions.csv", self._csv_file), ("predictions.jsonl", self._jsonl)):
            if fh is not None and not fh.closed:
                try:
                    with naming(self.pending[name].path):
                        fh.close()
                except OSError as err:
                    failed = failed or err
        if failed is not None:
            raise failed

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

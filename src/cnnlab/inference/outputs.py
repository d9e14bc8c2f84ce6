"""predict's files: `predictions.csv` and `predictions.jsonl` (one row per image), and the files it
did not label (`skipped.csv`: unreadable images; `not_images.txt`). Rows stream to `*.part` files
renamed into place at the end, so a run that fails leaves no half-written predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

NAMES = ("predictions.csv", "predictions.jsonl", "skipped.csv", "not_images.txt")


class PredictionWriter:
    def __init__(self, folder: Path, class_names: list[str], k: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.class_names, self.k = folder, class_names, k
        self.parts = {name: folder / f"{name}.part" for name in NAMES}
        self._csv_file = open(self.parts["predictions.csv"], "w", newline="")
        self._jsonl = open(self.parts["predictions.jsonl"], "w")
        self._csv = csv.writer(self._csv_file)
        ranks = [c for r in range(1, k + 1) for c in (f"top{r}", f"top{r}_prob")]
        self._csv.writerow(["path", "label", "pred", "prob", *ranks])
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
            self._csv.writerow([str(path), label, names[0], f"{values[0]:.6f}", *ranked])
            topk = [{"class": n, "prob": round(p, 6)} for n, p in zip(names, values, strict=True)]
            record = {"path": str(path), "label": label or None, "pred": names[0],
                      "prob": round(values[0], 6), "topk": topk}  # fmt: skip
            self._jsonl.write(json.dumps(record) + "\n")

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def finish(self, not_images: list[Path]) -> None:
        self._close()
        self.not_images = list(not_images)
        with open(self.parts["skipped.csv"], "w", newline="") as fh:
            csv.writer(fh).writerows([("path", "reason"), *self.skipped])
        self.parts["not_images.txt"].write_text("".join(f"{p}\n" for p in not_images))
        for name, part in self.parts.items():
            part.replace(self.folder / name)

    def abandon(self) -> None:
        self._close()
        for part in self.parts.values():
            part.unlink(missing_ok=True)

    def _close(self) -> None:
        self._csv_file.close()
        self._jsonl.close()

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

"""Hugging Face `datasets` as an image source (`data=hf`, the hf extra): a dataset on the Hub by
name (online, cached by `datasets`), or on disk: a `save_to_disk` folder, Parquet files, or a
folder `datasets` can load (an `imagefolder` tree, CSV/JSON with image paths).

Rows keep their encoded bytes (`Image(decode=False)`) and are decoded in DataLoader workers exactly
as image-folder files are (`FolderImages`: the training crop through `cnnlab.data.decode`, the
evaluation crop through PIL, EXIF orientation, the bad-image policy), so every augmentation preset,
decoder and `predict` behave the same on either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnlab.core.errors import UserError
from cnnlab.core.extras import need
from cnnlab.data.folder import FolderImages, drop_unreadable
from cnnlab.data.pixels import load_rgb

# Split names tried, in order, when a split is `auto`; none found: val is carved from train
# (seeded, data.val_fraction) and test is the val split.
AUTO_SPLITS = {"val": ("validation", "valid", "val", "dev"), "test": ("test",)}


def open_dataset(name: str, revision: str | None = None, cache_dir: str | None = None):
    """A DatasetDict from a path (save_to_disk folder, Parquet file or folder, a folder
    `load_dataset` reads) or a Hub name; one line when it cannot be found or read."""
    datasets = need("datasets")
    path = Path(name).expanduser()
    try:
        if path.is_dir() and (path / "dataset_dict.json").is_file():
            return datasets.load_from_disk(str(path))
        if path.is_dir() and (path / "state.json").is_file():  # one saved split
            return datasets.DatasetDict(train=datasets.load_from_disk(str(path)))
        if path.is_file() and path.suffix == ".parquet":  # one file: one split
            return datasets.load_dataset("parquet", data_files={"train": str(path)},
                                         cache_dir=cache_dir)  # fmt: skip
        if path.exists():  # a folder: its splits as `datasets` finds them (train.parquet, test-*…)
            return datasets.load_dataset(str(path), cache_dir=cache_dir)
        return datasets.load_dataset(name, revision=revision, cache_dir=cache_dir)
    except Exception as err:  # noqa: BLE001 - datasets fails in its own ways on odd folders
        # (an empty saved split: IndexError inside its table code); each is one line here
        where = "on disk" if path.exists() else "on the Hugging Face Hub (or in its cache)"
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        known = isinstance(err, FileNotFoundError | ConnectionError | OSError | ValueError)
        first = text if known and text else f"{type(err).__name__}{': ' + text if text else ''}"
        raise UserError(
            f"data.source.name={name!r}: cannot load it {where}: {first}; give a dataset name "
            f"(online), or a save_to_disk folder, Parquet files or an imagefolder tree"
        ) from None


def pick_split(available: list[str], wanted: str | None, role: str) -> str | None:
    """The split for `role` (train, val, test): the one named, the first of AUTO_SPLITS present
    for `auto`, or None (carved or reused)."""
    if wanted in (None, "auto"):
        return next((s for s in AUTO_SPLITS.get(role, ()) if s in available), None)
    if wanted not in available:
        raise UserError(
            f"data.source.{role}_split={wanted!r} is not a split of this dataset; it has: "
            f"{', '.join(available)}"
        )
    return wanted


def class_names(split, label_column: str) -> tuple[list[str], dict[Any, int] | None]:
    """The class names from a ClassLabel feature, else the sorted distinct label values (and
    the map from value to index). A missing label is not a class: one line."""
    feature = split.features[label_column]
    names = getattr(feature, "names", None)
    if names:
        return list(names), None
    values = sorted(set(split[label_column]), key=str)
    if None in values:
        raise UserError(
            f"data.source.label_column={label_column!r} has rows without a label "
            f"(null); remove them first (datasets' .filter), or name another column"
        )
    return [str(v) for v in values], {v: i for i, v in enumerate(values)}


# Columns datasets can cast to images: file paths, or the encoded bytes.
PATHS_OR_BYTES = ("string", "large_string", "binary", "large_binary")


def check_split(table, split: str, image_column: str, label_column: str, names) -> list[int]:
    """The split's labels as class indices, after the checks a training run would otherwise
    fail on much later: rows present, an image column that holds images, every label a class."""
    datasets = need("datasets")
    if len(table) == 0:
        raise UserError(f"split {split} of data.source.name has no rows; name another split "
                        f"(data.source.{{train,val,test}}_split=…)")  # fmt: skip
    feature = table.features[image_column]
    if (
        not isinstance(feature, datasets.Image)
        and getattr(feature, "dtype", None) not in PATHS_OR_BYTES
    ):
        raise UserError(
            f"data.source.image_column={image_column!r} holds {getattr(feature, 'dtype', feature)}"
            f" values, not images; its columns: {', '.join(table.column_names)}"
        )
    labels = table[label_column]
    if not isinstance(table.features[label_column], datasets.ClassLabel):
        return labels  # values: mapped to classes by the caller, which names unknown ones
    bad = sorted({v for v in labels if v is None or not 0 <= int(v) < len(names)}, key=str)
    if bad:
        raise UserError(
            f"split {split} has labels outside its {len(names)} classes: {bad[:10]} (-1 is "
            f"datasets' 'no label'); remove those rows first (datasets' .filter)"
        )
    return labels


def check_columns(split, name: str, image_column: str, label_column: str) -> None:
    columns = list(split.column_names)
    for key, column in (("image_column", image_column), ("label_column", label_column)):
        if column not in columns:
            raise UserError(
                f"data.source.{key}={column!r} is not a column of split {name}; its columns: "
                f"{', '.join(columns)}"
            )


class HFImages(FolderImages):
    """Rows of one split, decoded on demand like image files. `samples` are ("<split>#<row>",
    class index) pairs, so subsets, train/val carving and the overlap check work unchanged."""

    def __init__(self, table, image_column: str, samples, class_names, image_size, **settings):
        super().__init__(samples, class_names, image_size, **settings)
        self.table = table  # the split, images as {"bytes", "path"} (decode=False)
        self.image_column = image_column

    def _bytes(self, key: str) -> tuple[bytes, str]:
        row = self.table[int(key.rpartition("#")[2])][self.image_column]
        data, path = row.get("bytes"), row.get("path") or key
        if data is None:
            try:
                data = Path(path).read_bytes()
            except OSError as err:
                raise UserError(f"cannot read image {path} ({key}): {err}") from None
        return data, f"{key} ({path})" if row.get("path") else key

    def image(self, key: str):
        """The row's image decoded as `predict` decodes a file (`load_rgb`)."""
        data, name = self._bytes(key)
        return load_rgb(name, data)

    def __getitem__(self, i: int):
        key, target = self.samples[i]
        if self.read is None:  # eval: PIL, exactly as predict reads a file
            return self.eval_transform(self.image(key)), target
        data, name = self._bytes(key)
        return self.read(data, name), target

    def quick_keys(self) -> list[str]:
        """Each row's encoded size, from the Arrow column's offsets (no image bytes read)."""
        import pyarrow.compute as pc

        column = self.table.data.column(self.image_column)  # chunked: never copied whole
        sizes = pc.binary_length(pc.struct_field(column, "bytes")).to_pylist()
        return [str(sizes[int(key.rpartition("#")[2])]) for key, _ in self.samples]

    def content_hash(self, i: int) -> str:
        data, _ = self._bytes(self.samples[i][0])
        return hashlib.blake2b(data, digest_size=16).hexdigest()

    def _like(self, samples, **settings) -> HFImages:
        return HFImages(self.table, self.image_column, samples, self.class_names,
                        self.image_size, **settings)  # fmt: skip

    def file_summary(self) -> str:
        sizes: dict[tuple[int, int], int] = {}
        for key, _ in self.samples[:200]:
            try:
                img = self.image(key)
            except UserError:
                continue
            sizes[img.size] = sizes.get(img.size, 0) + 1
        top = ", ".join(f"{w}×{h}: {n}" for (w, h), n in sorted(sizes.items())[:3])
        return f"sizes (first {min(len(self), 200)} rows) {top}"


def open_split(
    dataset: Mapping, split: str, image_size: int, image_column: str, label_column: str,
    names: list[str], lookup: dict | None, on_bad_image: str, eval_resize: int | None,
) -> HFImages:  # fmt: skip
    datasets = need("datasets")
    table = dataset[split]
    check_columns(table, split, image_column, label_column)
    labels = check_split(table, split, image_column, label_column, names)
    table = table.cast_column(image_column, datasets.Image(decode=False))
    if lookup is not None:
        unknown = sorted({str(v) for v in labels if v not in lookup})
        if unknown:
            raise UserError(f"split {split} has labels the training split lacks: {unknown[:10]}")
        labels = [lookup[v] for v in labels]
    samples = [(f"{split}#{i}", int(y)) for i, y in enumerate(labels)]
    images = HFImages(table, image_column, samples, names, image_size, eval_resize=eval_resize)
    if on_bad_image == "skip":
        images = images._with(drop_unreadable(samples, f"split {split}", images.image))
    return images

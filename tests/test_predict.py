"""`predict`: labels any number of images with a checkpoint's own preprocessing, and writes them
to CSV and JSON Lines; non-images are listed and bad inputs answered in one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.mnist_sample import write_pngs
from cnnlab.inference import tta

CKPT = "checkpoints/best.ckpt"


def _rows(folder: Path) -> list[dict]:
    with open(folder / "predictions.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _run_folder(tmp_path: Path, name: str) -> Path:
    return tmp_path / "outputs" / "predict" / "runs" / name


def test_pngs_of_the_test_split_give_evals_accuracy_and_report(command, digits_run, tmp_path):
    """The 1,000 test digits as PNG files: predict's accuracy is exactly eval's, and eval's
    top-1, macro F1 and confusion matrix are recomputed from predictions.csv."""
    from sklearn.metrics import confusion_matrix, f1_score

    digits = write_pngs(tmp_path / "digits")
    ckpt = digits_run / CKPT
    proc = command("predict", f"ckpt_path={ckpt}", f"images={digits}", "run_id=p")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(_run_folder(tmp_path, "p"))
    assert len(rows) == 1000 and all(r["label"] for r in rows)
    correct = sum(r["pred"] == r["label"] for r in rows)
    assert f"accuracy {correct / 1000:.4f} on the 1000 image(s)" in proc.stdout

    proc = command("eval", f"ckpt_path={ckpt}", "run_id=e")
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "outputs" / "eval" / "runs" / "e" / "eval" / "test"
    metrics = json.loads((report / "metrics.json").read_text())
    assert round(metrics["top1"] * 1000) == correct  # exactly the same images right
    names = list(metrics["per_class"])
    labels, preds = [r["label"] for r in rows], [r["pred"] for r in rows]
    assert metrics["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"), abs=1e-6)
    with open(report / "confusion_matrix.csv", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0][1:] == names
    counts = [[int(v) for v in row[1:]] for row in table[1:]]
    assert counts == confusion_matrix(labels, preds, labels=names).tolist()
    # The JSON Lines file says the same as the CSV, with the top-k in order.
    lines = [json.loads(x) for x in (_run_folder(tmp_path, "p") / "predictions.jsonl").open()]
    assert [x["pred"] for x in lines] == preds
    probs = [t["prob"] for t in lines[0]["topk"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)


def _small_folder(root: Path) -> Path:
    (root / "a" / "deeper").mkdir(parents=True)
    Image.new("L", (28, 28), 0).save(root / "a" / "one.png")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(root / "a" / "deeper" / "two.jpg")
    Image.new("RGBA", (28, 28), (0, 0, 0, 0)).save(root / "three.png")
    (root / "notes.txt").write_text("not an image")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_folders_are_read_recursively_and_bad_images_fail_or_are_skipped(
    command, digits_run, tmp_path
):
    folder = _small_folder(tmp_path / "photos")
    ckpt = digits_run / CKPT
    proc = command("predict", f"ckpt_path={ckpt}", f"images={folder}", "run_id=fail")
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and f"cannot read image {folder / 'broken.png'}" in line
    assert "on_bad_image=skip" in line
    assert not _run_folder(tmp_path, "fail").exists()  # nothing half-written left behind

    proc = command("predict", f"ckpt_path={ckpt}", f"images={folder}", "on_bad_image=skip",
                   "run_id=skip", "topk=3")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = _run_folder(tmp_path, "skip")
    rows = _rows(out)
    assert sorted(Path(r["path"]).name for r in rows) == ["one.png", "three.png", "two.jpg"]
    assert "top3_prob" in rows[0] and "top4" not in rows[0]
    assert [r["path"] for r in csv.DictReader(open(out / "skipped.csv"))] == [
        str(folder / "broken.png")
    ]
    assert (out / "not_images.txt").read_text() == f"{folder / 'notes.txt'}\n"
    assert "skipped 1 unreadable" in proc.stdout and "1 file(s) are not images" in proc.stdout
    assert not list(out.glob(".*.tmp"))  # the temporary files are renamed into place


def test_other_channel_counts_are_converted_as_in_training(digits_run, tmp_path):
    """An RGB photo into the grayscale network: converted to luma, as the training data was."""
    from cnnlab.inference.images import ImageFiles

    gray = tmp_path / "g.png"
    Image.new("L", (28, 28), 90).save(gray)
    colour = tmp_path / "c.png"
    Image.new("RGB", (28, 28), (90, 90, 90)).save(colour)
    images = ImageFiles([gray, colour], channels=1, image_size=28)
    (a, _, err_a), (b, _, err_b) = images[0], images[1]
    assert err_a == err_b == "" and a.shape == b.shape == (1, 28, 28) and torch.equal(a, b)


def test_globs_and_tta_views(command, digits_run, tmp_path):
    digits = write_pngs(tmp_path / "digits")
    ckpt = digits_run / CKPT
    pattern = str(digits / "7*" / "*.png")
    proc = command("predict", f"ckpt_path={ckpt}", f"images={pattern}", "tta=hflip", "run_id=g")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(_run_folder(tmp_path, "g"))
    assert len(rows) == 100 and {r["label"] for r in rows} == {"7 - seven"}
    # hflip: the softmax of the image and of its mirror, averaged.
    import cnnlab

    model = cnnlab.load(ckpt)
    image = torch.from_numpy(np.array(Image.open(rows[0]["path"])))[None, None]
    expected = (model.predict(image) + model.predict(image.flip(-1))) / 2
    assert float(rows[0]["prob"]) == pytest.approx(float(expected.max()), abs=1e-5)
    assert [v.shape[-1] for v in tta.views(torch.zeros(2, 1, 32, 32), "five_crop", 28)] == [28] * 5
    assert tta.load_size("five_crop", 224) == 256


@pytest.mark.parametrize(
    "args, message",
    [
        (["images=/no/such/folder"], "images=/no/such/folder does not exist"),
        (["images={empty}"], "holds no images (0 other file(s))"),
        (["images={empty}", "tta=mirror"], "tta='mirror' is not valid; choose one of: none"),
        (["images={empty}", "topk=0"], "topk=0 is out of range; valid: a whole number ≥ 1"),
        (["images={empty}", "on_bad_image=ignore"], "on_bad_image='ignore' is not valid"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run_folder(
    command, digits_run, tmp_path, args, message
):
    (tmp_path / "empty").mkdir()
    args = [a.format(empty=tmp_path / "empty") for a in args]
    proc = command("predict", f"ckpt_path={digits_run / CKPT}", *args, "run_id=bad")
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and message in line, proc.stderr
    assert "Traceback" not in proc.stderr and not _run_folder(tmp_path, "bad").exists()


def test_a_checkpoint_that_is_not_cnnlabs_is_refused(command, tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    (tmp_path / "x.png").write_bytes(b"")
    proc = command("predict", f"ckpt_path={foreign}", f"images={tmp_path}")
    assert proc.returncode == 1
    assert f"error: {foreign} has no cnnlab training config" in proc.stderr


def test_predict_files_reads_as_predict_and_names_an_unreadable_file(digits_run, tmp_path):
    import cnnlab
    from cnnlab.core.errors import UserError

    model = cnnlab.load(digits_run / CKPT)
    digits = write_pngs(tmp_path / "digits")
    files = sorted((digits / "7 - seven").glob("*.png"))[:3]
    batch = model.read(files)
    assert batch.dtype == torch.uint8 and tuple(batch.shape) == (3, 1, 28, 28)
    assert torch.equal(model.predict_files(files), model.predict(batch))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(UserError, match=f"cannot read image {broken}"):
        model.predict_files([files[0], broken])

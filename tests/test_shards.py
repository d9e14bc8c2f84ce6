"""Shards (`make shards`, `data=shards`): conversion round-trips every image and label, 2-rank DDP
sees each sample once per epoch, kill -9 mid-epoch then resume is bit-identical, and the
conversion refuses bad input leaving nothing half-written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.commands import corpus as corpus_command
from cnnlab.data import photo_corpus
from cnnlab.data.folder import open_split
from cnnlab.data.pixels import load_rgb
from cnnlab.data.shards import ShardImages, write_split
from tests.test_reliability import _weights

TRAIN, VAL = 48, 12  # 48 / batch 8 = 6 steps per epoch; 24 per rank under 2-rank DDP


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return photo_corpus.write(tmp_path_factory.mktemp("corpus"), {"train": TRAIN, "val": VAL})


@pytest.fixture(scope="module")
def shards(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    for split in ("train", "val"):
        write_split(corpus / split, out / split, chunk_mb=1, workers=2)
    return out


def test_the_corpus_is_distinct_photo_sized_jpegs(corpus):
    files = sorted((corpus / "train").rglob("*.jpg"))
    assert len(files) == TRAIN and len({f.read_bytes() for f in files}) == TRAIN
    sizes = {Image.open(f).size for f in files}
    assert sizes <= {(500, 375), (375, 500)}
    assert {f.parent.name for f in files} == set(photo_corpus.CLASSES)


def test_conversion_round_trips_every_image_and_label(corpus, shards):
    folder = open_split(corpus / "train", 32)
    meta = json.loads((shards / "train" / "index.json").read_text())["cnnlab"]
    assert meta["classes"] == folder.class_names
    split = ShardImages(str(shards / "train"), 32)
    raw = split.stream(seed=0, shuffle=False)
    assert len(raw) == len(split) == TRAIN
    paths = [p for p, _ in folder.samples]
    seen = {}
    for position in range(len(raw)):
        sample = super(type(raw), raw).__getitem__(position)  # LitData's raw sample
        source = corpus / "train" / meta["files"][position]
        assert sample["image"] == source.read_bytes()  # the file's own bytes
        assert sample["label"] == folder.class_names.index(source.parent.name)
        assert sample["index"] == position
        seen[meta["files"][position]] = sample["label"]
        if position < 6:  # and the same evaluation image as the folder gives
            image, label = split[position]
            assert (
                torch.equal(image, folder[paths.index(str(source))][0]) and label == sample["label"]
            )
    assert sorted(seen) == sorted(str(Path(p).relative_to(corpus / "train")) for p in paths)
    assert sorted(meta["labels"]) == sorted(folder.targets.tolist())


def test_max_side_reencodes_smaller_and_keeps_the_picture(corpus, tmp_path):
    info = write_split(corpus / "val", tmp_path / "val", max_side=128, chunk_mb=1, workers=1)
    files = sum(f.stat().st_size for f in (corpus / "val").rglob("*.jpg"))
    assert info["images"] == VAL and info["bytes"] < files / 4
    small = ShardImages(str(tmp_path / "val"), 32)
    raw = small.stream(seed=0, shuffle=False)
    sample = super(type(raw), raw).__getitem__(0)
    img = Image.open(io.BytesIO(sample["image"]))
    source = corpus / "val" / small.meta["files"][0]
    original = load_rgb(str(source))
    assert max(img.size) == 128
    assert abs(img.width / img.height - original.width / original.height) < 0.02
    # The eval crops of the re-encoded and the original image agree to a few grey levels.
    folder = open_split(corpus / "val", 32)
    b = folder[[p for p, _ in folder.samples].index(str(source))][0].float()
    assert (small[0][0].float() - b).abs().mean() < 4


def test_conversion_refuses_bad_input_and_leaves_nothing(command, corpus, tmp_path):
    out = tmp_path / "shards"
    missing = command("shards", f"src={tmp_path / 'nope'}", f"out={out}")
    assert missing.returncode == 1 and "is not a folder" in missing.stderr
    no_split = command("shards", f"src={corpus}", f"out={out}", "splits=[train,test]")
    assert no_split.returncode == 1 and "['test'] not in" in no_split.stderr
    bad = tmp_path / "bad"
    for cls in ("a", "b"):
        (bad / "train" / cls).mkdir(parents=True)
        Image.new("RGB", (40, 30), (200, 10, 10)).save(bad / "train" / cls / "ok.jpg")
    (bad / "train" / "b" / "broken.jpg").write_bytes(b"\xff\xd8" + b"\x00" * 64)
    failed = command("shards", f"src={bad}", f"out={out}", "splits=[train]", "workers=1")
    assert failed.returncode == 1 and "broken.jpg" in failed.stderr
    assert not list(out.iterdir())  # no split, no partial folder
    skipped = command("shards", f"src={bad}", f"out={out}", "splits=[train]",
                      "on_bad_image=skip", "workers=1")  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    assert "train: 2 images in 2 classes" in skipped.stdout and "skipped 1" in skipped.stdout
    again = command("shards", f"src={bad}", f"out={out}", "splits=[train]")
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        == f"error: {out} already has ['train']; pass overwrite=true to replace them"
    )


def test_a_folder_without_shards_is_one_line(compose, tmp_path):
    from cnnlab.core.errors import UserError
    from cnnlab.training import build

    cfg = compose("data=shards", f"data.source.root={tmp_path}", "data.num_classes=6")
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    with pytest.raises(UserError, match=r"no shards at .*train .*make shards"):
        dm.setup("fit")


RUN = [
    "debug=test",
    "data=shards",
    "data.num_classes=6",
    "data.image_size=32",
    "data.batch_size=8",
    "augment=imagenet",  # random crops, flips, colour jitter, RandAugment: all seeded per sample
    "model.net.dropout=0.5",
    "trainer.max_epochs=2",
    "test=false",
]


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_is_bit_identical(cli, command, shards, tmp_path):
    run = [*RUN, f"data.source.root={shards}", "data.num_workers=1",
           "callbacks.model_checkpoint.every_n_train_steps=2"]  # fmt: skip
    full = command("train", *run, "run_id=full")
    assert full.returncode == 0, full.stderr[-3000:]
    fault = ["+callbacks.fault._target_=tests.faults.SignalAt", "+callbacks.fault.step=9",
             f"+callbacks.fault.once={tmp_path / 'fired'}"]  # fmt: skip
    killed = cli("train", *run, "run_id=part", *fault)
    assert killed.returncode == -9
    part = tmp_path / "outputs" / "train" / "runs" / "part"
    ckpt = torch.load(part / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 8 and ckpt["epoch"] == 1  # 2 of epoch 1's 6 batches done
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]  # LitData's position
    resumed = command("train", *run, "run_id=part", *fault)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _weights(tmp_path / "outputs" / "train" / "runs" / "full"), _weights(part)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_two_rank_ddp_sees_each_sample_once_per_epoch(cli, shards, tmp_path):
    seen = tmp_path / "seen"
    proc = cli(
        "train", *RUN, f"data.source.root={shards}", "augment=none", "trainer=ddp_cpu",
        "trainer.devices=2", "data.num_workers=1",
        "+callbacks.seen._target_=tests.probes.SeenImages", f"+callbacks.seen.folder={seen}",
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for epoch in (0, 1):
        per_rank = [(seen / f"epoch{epoch}_rank{r}.txt").read_text().split() for r in (0, 1)]
        assert len(per_rank[0]) == len(per_rank[1]) == TRAIN // 2  # an even split
        together = per_rank[0] + per_rank[1]
        # No augmentation and distinct photos: one digest per image, so TRAIN distinct digests
        # in TRAIN draws means every sample exactly once.
        assert len(together) == TRAIN and len(set(together)) == TRAIN


def test_what_shards_cannot_do_is_one_line(compose, shards):
    from cnnlab.core.errors import UserError
    from cnnlab.training import build

    for override, says in (
        ("data.train_limit=10", "data.train_limit"),
        ("data.balance=sampler", "data.balance=loss"),
        ("data.folds=3", "k-fold"),
    ):
        cfg = compose("data=shards", f"data.source.root={shards}", "data.num_classes=6",
                      "data.image_size=32", override)  # fmt: skip
        dm = build.datamodule(cfg.data, build.preprocessing(cfg))
        with pytest.raises(UserError, match=says):
            dm.setup("fit")
            dm.train_dataloader()


def test_the_corpus_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for argv, says in (
        (["--out", str(tmp_path / "c"), "--train", "0"], "--train 0 --val 200: give ≥ 1"),
        (["--out", str(blocker / "c"), "--train", "6"], f"error: cannot write {blocker}"),
    ):
        with pytest.raises(SystemExit) as stop:
            corpus_command.main(argv)
        assert stop.value.code == 1 and says in capsys.readouterr().err


def test_embed_reads_shards_in_order_and_continues_after_finished_parts(
    command, shards, tmp_path, monkeypatch
):
    """Streaming shards are read in order, not indexed: a continued embed skips the images its
    finished parts hold, and the features match an uninterrupted embed's."""
    from cnnlab.features import embed

    args = [
        "data=shards",
        f"data.source.root={shards}",
        "data.image_size=32",
        "data.eval_batch_size=8",
    ]
    whole = command("embed", *args, f"paths.feature_cache={tmp_path / 'whole'}", "run_id=w")
    assert whole.returncode == 0, whole.stderr[-3000:]
    monkeypatch.setattr(embed, "PART_IMAGES", 16)  # three parts of the 48 training images
    first = command("embed", *args, "run_id=a")
    parts = sorted((tmp_path / "outputs" / "features").glob("*/features.npy"))
    assert first.returncode == 0 and len(parts) == 2  # train, val (= test: one folder)
    train = next(p.parent for p in parts if "train" in (p.parent / "meta.json").read_text())
    np = pytest.importorskip("numpy")
    rows = np.load(train / "features.npy")
    (train / "meta.json").unlink()  # as if killed after its parts: keep two of three
    (train / "parts").mkdir()
    np.save(train / "parts" / "000000.npy", rows[:16])
    np.save(train / "parts" / "000001.npy", rows[16:32])
    again = command("embed", *args, "run_id=b")
    said = again.stdout + again.stderr
    assert "train: continuing after 32 of 48 images (2 parts kept)" in said, said[-3000:]
    assert "train: 16 images embedded" in said
    resumed = np.load(tmp_path / "outputs/embed/runs/b/features/train/features.npy")
    uninterrupted = np.load(tmp_path / "outputs/embed/runs/w/features/train/features.npy")
    np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-5)

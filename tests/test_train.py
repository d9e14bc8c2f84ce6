"""One-epoch train → test → eval round trips, in process, on fake data and on real digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.commands.eval import evaluate
from cnnlab.commands.train import train


def _events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.mark.parametrize("data", ["fake", pytest.param("mnist_sample", marks=pytest.mark.slow)])
def test_train_then_eval_reproduces_test_accuracy(quick, compose, data):
    cfg = quick(f"data={data}", "test=true")
    metrics, objs = train(cfg)
    run = Path(cfg.paths.output_dir)
    for key in (
        "train/loss",
        "val/loss",
        "val/acc",
        "val/acc_best",
        "test/acc",
        "test/acc5",
        "test/loss",
    ):
        assert key in metrics, key
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["best.ckpt", "last.ckpt"]
    for name in ckpts:  # plain hyperparameters only: loads without unpickling arbitrary objects
        ckpt = torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert ckpt["hyper_parameters"]["config"]["data"]["name"] == data
    if data == "mnist_sample":
        assert metrics["test/acc"] > 0.85  # one epoch on 3,600 real digits

    eval_cfg = compose(
        f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        config_name="eval",
    )
    assert evaluate(eval_cfg)["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_tensorboard_gets_scalars_and_real_hparams(quick, compose):
    cfg = quick("data=fake", "trainer.log_every_n_steps=1", "test=true")
    metrics, _ = train(cfg)
    acc = _events(Path(cfg.paths.output_dir))
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss_step", "val/acc", "val/acc_best", "test/acc"} <= scalars
    assert any(tag.startswith("lr-") for tag in scalars)
    # The HPARAMS tab: the session summary names real metric tags, not a -1 placeholder.
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.SummaryMetadata("_hparams_/experiment").plugin_data.content
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    names = {m.name.tag for m in experiment.metric_infos}
    assert {"val/acc", "test/acc"} <= names and "hp_metric" not in scalars
    hparams = {h.name for h in experiment.hparam_infos}
    assert {"optimizer/lr", "data/batch_size", "trainer/max_epochs", "model/params"} <= hparams
    assert len(hparams) <= 12  # HPARAMS' columns; the whole config is in hparams.yaml
    stored = (Path(cfg.paths.output_dir) / "tb" / "hparams.yaml").read_text()
    assert "model/net/hidden:" in stored and "_target_" not in stored  # Hydra internals left out
    assert acc.Scalars("test/acc")[-1].value == pytest.approx(metrics["test/acc"])
    assert "model/arithmetic/text_summary" in acc.Tags()["tensors"]  # the layer table
    images = set(acc.Tags()["images"])
    assert {
        "gradcam/gradcam",
        "data/augmented_train_batch",
        "diagnostics/confusion_matrix",
        "diagnostics/first_layer_filters",
        "diagnostics/feature_maps",
    } <= images, images
    assert any(t.startswith("val_per_class_acc/") for t in scalars)


def test_no_test_when_disabled(quick, compose):
    metrics, _ = train(quick("data=fake"))
    assert "test/acc" not in metrics and "val/acc" in metrics


def test_diagnostics_reuse_the_validation_pass_instead_of_predicting_again(quick, monkeypatch):
    """The last epoch's diagnostics read the validation pass's probabilities: the split is not
    loaded or predicted again, and the per-class accuracies agree with val/acc."""
    from cnnlab.callbacks import diagnostics
    from cnnlab.training import build

    def predict_again(dm):
        raise AssertionError("diagnostics predicted the validation split again")

    monkeypatch.setattr(diagnostics, "_val_tensors", predict_again)
    cfg = quick("data=fake")
    metrics, _ = train(cfg)
    acc = _events(Path(cfg.paths.output_dir))
    assert "diagnostics/worst_misclassified" in acc.Tags()["images"]
    per_class = {
        int(tag.split("/")[1][:3]): acc.Scalars(tag)[-1].value
        for tag in acc.Tags()["scalars"]
        if tag.startswith("val_per_class_acc/")
    }
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    dm.setup("fit")
    counts = torch.bincount(dm.val_set.targets, minlength=cfg.data.num_classes)
    hits = sum(per_class[c] * int(counts[c]) for c in per_class)
    assert hits / int(counts.sum()) == pytest.approx(metrics["val/acc"], abs=1e-6)


def test_diagnostics_predict_again_when_the_validation_pass_is_not_the_whole_split():
    """DDP ranks (a shard each) and passes whose targets disagree with the split's order fall
    back to predicting the split."""
    from types import SimpleNamespace

    from cnnlab.callbacks.diagnostics import Diagnostics

    targets = torch.tensor([0, 1, 2, 1])
    dm = SimpleNamespace(val_set=type("Val", (), {"targets": targets, "__len__": lambda s: 4})())
    trainer = SimpleNamespace(
        sanity_checking=False, global_rank=0, current_epoch=0, max_epochs=1, world_size=1
    )
    diag, probs = Diagnostics(), torch.eye(3)[targets]
    for seen, expected in ((targets, True), (targets.flip(0), False), (targets[:3], False)):
        diag.on_validation_epoch_start(trainer, None)
        diag.on_validation_batch_end(trainer, None, probs[: len(seen)], (None, seen), 0)
        assert (diag._validation_pass(dm) is not None) is expected
    trainer.world_size = 2
    diag.on_validation_epoch_start(trainer, None)
    diag.on_validation_batch_end(trainer, None, probs, (None, targets), 0)
    assert diag._validation_pass(dm) is None


def test_mixed_precision_is_decided_for_the_machine(monkeypatch):
    """trainer=gpu's precision=mixed: bf16 where the GPU has it, fp16 before, fp32 without CUDA."""
    import torch

    from cnnlab.training.precision import resolve

    assert resolve("16-mixed", "gpu") == "16-mixed"  # anything else passes through
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve("mixed", "gpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve("mixed", "gpu") == "bf16-mixed" and resolve("mixed", "cpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve("mixed", "auto") == "16-mixed"


def test_unused_per_batch_hooks_are_taken_off_and_used_ones_kept():
    import lightning as L

    from cnnlab.callbacks.nonfinite import NonFiniteGuard
    from cnnlab.training.step_hooks import skip_unused

    guard, plain = NonFiniteGuard(), L.Callback()
    skip_unused([guard, plain])
    assert plain.on_train_batch_start is None and plain.on_before_backward is None
    assert callable(guard.on_before_backward) and callable(guard.on_train_batch_end)
    assert guard.on_after_backward is None  # the guard does not use it
    assert callable(plain.on_train_epoch_end)  # per-epoch hooks are left alone


def test_batches_are_pinned_only_for_a_cuda_gpu():
    from types import SimpleNamespace

    from cnnlab.data.datamodule import ClassificationDataModule

    dm = ClassificationDataModule.__new__(ClassificationDataModule)
    dm.pin_memory = "auto"
    dm.trainer = None
    assert dm._pinned() is False
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=SimpleNamespace(type="cuda")))
    assert dm._pinned() is True
    dm.pin_memory = False
    assert dm._pinned() is False

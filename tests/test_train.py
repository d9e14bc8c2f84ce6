"""One-epoch train → test → eval round trips, in process, on fake data and on real digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.eval import evaluate
from cnnlab.train import train


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
    assert {"optimizer/lr", "model/net/hidden", "data/name", "model/params"} <= hparams
    assert not any(h.endswith("_target_") for h in hparams)  # Hydra internals left out
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

"""Grad-CAM: every zoo model, every method, and localisation that fails if CAM is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.analysis.cam import METHODS, NoFeatureMaps, cam_maps, pointing_game, resolve_layer
from cnnlab.commands.train import train
from cnnlab.training import build
from tests.conftest import model_options

MODELS = model_options()


@pytest.mark.parametrize("model", MODELS)
def test_cam_for_every_model(compose, model):
    cfg = compose(f"model={model}", "data=fake", "data.image_size=32")
    prep = build.preprocessing(cfg)
    net = build.network(cfg.model, prep)
    size = prep.input_size
    x = torch.randn(2, 3, size, size)
    if cfg.model.cam_layer is None:
        with pytest.raises(NoFeatureMaps, match="no feature maps"):
            resolve_layer(net, cfg.model.cam_layer, x[:1])
        return
    layer = resolve_layer(net, cfg.model.cam_layer, x[:1])
    net.train()
    maps = cam_maps(net, layer, x, [0, 3])
    assert maps.shape == (2, size, size) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6
    assert net.training  # the CAM constructor's eval() is undone


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_under_inference_mode(compose, method):
    cfg = compose("model=convnet", "data=fake")
    net = build.network(cfg.model, build.preprocessing(cfg)).eval()
    with torch.inference_mode():  # as in trainer.validate/test
        maps = cam_maps(net, "features.4", torch.randn(3, 3, 32, 32), [1, 2, 3], method)
    assert maps.shape == (3, 32, 32)


@pytest.mark.slow
def test_pointing_game_trained_beats_random(compose, tmp_path):
    cfg = compose(
        "data=shapes",
        "augment=none",
        "data.source.num_samples=1500",
        "trainer.max_epochs=4",
        "optimizer.lr=3e-3",  # AdamW's one-cycle peak before the default became 5e-3 (MNIST)
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "callbacks.progress_bar=null",
        "callbacks.gradcam.every_n_epochs=2",
        "seed=0",
    )
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    dm.setup("fit")
    test = dm.test_set
    x = dm.preprocess(test.images[:300])
    torch.manual_seed(0)
    random_net = build.network(cfg.model, build.preprocessing(cfg))
    random_score = pointing_game(
        cam_maps(random_net, "features.4", x, test.targets[:300].tolist()), test.boxes[:300]
    )
    _, objs = train(cfg)
    trained = objs["model"].net
    trained_score = pointing_game(
        cam_maps(trained, "features.4", x, test.targets[:300].tolist()), test.boxes[:300]
    )
    assert random_score <= 0.3, random_score
    assert trained_score >= 0.8, trained_score
    events = EventAccumulator(
        str(Path(cfg.paths.output_dir) / "tb"), size_guidance={"images": 0, "scalars": 0}
    )
    events.Reload()
    assert "gradcam/gradcam" in events.Tags()["images"]
    # every_n_epochs=2 of 4: after the 2nd and the 4th (last) epoch, steps 1 and 3
    assert [e.step for e in events.Images("gradcam/gradcam")] == [1, 3]
    assert "val/pointing_game" in events.Tags()["scalars"]


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_training_grid_maps_both_classes_in_one_pass_equal_to_separate_passes(
    compose, monkeypatch, method
):
    """GradCamGrid computes the predicted- and true-class maps in one CAM pass over the images
    twice; each map equals the one a pass of its own gives."""
    from types import SimpleNamespace

    from cnnlab.callbacks import gradcam

    cfg = compose("model=convnet", "data=fake")
    torch.manual_seed(0)
    net = build.network(cfg.model, build.preprocessing(cfg)).eval()
    x, truths = torch.randn(4, 3, 32, 32), torch.tensor([1, 2, 3, 4])
    calls, drawn = [], {}
    monkeypatch.setattr(gradcam, "cam_maps", lambda *a, **k: calls.append(a) or cam_maps(*a, **k))
    monkeypatch.setattr(gradcam, "grid_image", lambda *a: drawn.update(maps=a[1:3]) or a[0])
    monkeypatch.setattr(gradcam, "Media", lambda loggers: SimpleNamespace(image=lambda *a: None))
    dm = SimpleNamespace(to_unit=lambda t: t.float(), class_names=[str(i) for i in range(10)])
    val = SimpleNamespace(images=x, targets=truths)
    trainer = SimpleNamespace(loggers=[], current_epoch=0)
    grid = gradcam.GradCamGrid(method=method)
    grid._log_grid(trainer, SimpleNamespace(net=net), dm, val, [0, 1, 2, 3], x, "features.4")
    preds = net(x).argmax(1).tolist()
    assert len(calls) == 1
    pred_maps, true_maps = drawn["maps"]
    np.testing.assert_allclose(pred_maps, cam_maps(net, "features.4", x, preds, method), atol=1e-5)
    np.testing.assert_allclose(
        true_maps, cam_maps(net, "features.4", x, truths.tolist(), method), atol=1e-5
    )

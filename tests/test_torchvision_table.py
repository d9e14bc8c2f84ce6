"""cnnlab's arithmetic against the table nobody here wrote: the parameters and multiply-adds that
torchvision publishes in each weights enum's `meta`, for every classification model with weights
(the giants included: counting runs on the meta device).

The aux-head rule: networks are built as each weights' own builder builds them. Inception-v3's
weights keep the auxiliary classifier (AuxLogits, counted in `params`, listed in `unused`: the
eval forward pass does not run it); GoogLeNet's drop theirs.
"""

from __future__ import annotations

import pytest
import torchvision

from cnnlab.analysis.arithmetic import analyze, on_meta

MODELS = torchvision.models.list_models(module=torchvision.models)


def builder_kwargs(name: str, weights) -> dict:
    kwargs = {"num_classes": len(weights.meta["categories"] or range(1000))}
    if name.startswith("vit_"):
        kwargs["image_size"] = weights.meta["min_size"][0]  # position embeddings for this size
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=False)
    if name == "inception_v3":
        kwargs.update(aux_logits=True, init_weights=False)
    return kwargs


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_parameters_and_multiply_adds_match_torchvision_meta(name):
    for weights in torchvision.models.get_model_weights(name):
        crop = weights.transforms().crop_size[0]
        net = on_meta(
            lambda w=weights: torchvision.models.get_model(name, **builder_kwargs(name, w))
        )
        report = analyze(net, (3, crop, crop))
        meta = weights.meta
        assert report.params == meta["num_params"], weights
        # 1 %, or the meta's own rounding to 3 decimals (shufflenet_v2_x0_5: 0.0405 vs 0.040)
        gmacs = report.macs / 1e9
        assert abs(gmacs - meta["_ops"]) <= max(0.01 * meta["_ops"], 0.0005), (weights, gmacs)
        assert sum(r.flops for r in report.rows) == report.flops  # every FLOP sits in a row


def test_attention_is_counted_and_sits_in_its_row():
    net = on_meta(lambda: torchvision.models.vit_b_16())
    report = analyze(net, (3, 224, 224))
    assert round(report.macs / 1e9, 3) == 17.564  # torchvision: 17.564
    attention = [r for r in report.rows if r.kind == "MultiheadAttention"]
    assert len(attention) == 12
    # in-projection, the two attention matmuls and out_proj, per image, 2 FLOPs per MAC:
    tokens, dim = 197, 768
    expected = 2 * (tokens * dim * 3 * dim + 2 * tokens * tokens * dim + tokens * dim * dim)
    assert {r.flops for r in attention} == {expected}


def test_inception_aux_head_is_counted_and_named():
    net = on_meta(lambda: torchvision.models.inception_v3(aux_logits=True, init_weights=False))
    report = analyze(net, (3, 299, 299))
    assert report.params == 27_161_264 and report.unused == [("AuxLogits", 3_326_696)]

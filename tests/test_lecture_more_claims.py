"""The lecture's later claims (pooling, parameter sharing, normalization, probe vs fine-tune, the
ImageNet numbers): each verdict follows from its numbers, never "holds" when the premise fails,
and the ConvNet variants they sweep are the networks they say."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from cnnlab.cli.schema import validate
from cnnlab.core.errors import UserError
from cnnlab.lecture import cam_grid, imagenet, layer_claims, transfer_claims
from cnnlab.lecture.results import Job
from cnnlab.models.convnet import ConvNet
from cnnlab.models.mlp import MLP
from tests.test_lecture import seeds


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_strided_convnet_keeps_sizes_and_parameters_but_has_no_pooling():
    pooled = ConvNet(in_channels=1, num_classes=10, image_size=28)
    strided = ConvNet(in_channels=1, num_classes=10, image_size=28, pool="stride")
    assert _params(pooled) == _params(strided) == 824_970
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in strided.modules())
    x = torch.randn(2, 1, 28, 28)
    assert pooled.features(x).shape == strided.features(x).shape == (2, 64, 7, 7)
    # The same layer positions: a checkpoint's keys and cam_layer paths keep their meaning.
    assert pooled.state_dict().keys() == strided.state_dict().keys()


@pytest.mark.parametrize("norm, layer", [("batch", torch.nn.BatchNorm2d),
                                         ("group", torch.nn.GroupNorm),
                                         ("layer", torch.nn.GroupNorm)])  # fmt: skip
def test_convnet_norm_variants_sit_where_batchnorm_does(norm, layer):
    net = ConvNet(in_channels=1, num_classes=10, image_size=28, norm=norm)
    assert isinstance(net.features[1], layer) and isinstance(net.features[5], layer)
    if norm == "layer":
        assert net.features[1].num_groups == 1  # normalised over channels and space together
    if norm == "batch":  # the older spelling builds the same network: old checkpoints load
        old = ConvNet(in_channels=1, num_classes=10, image_size=28, batch_norm=True)
        net.load_state_dict(old.state_dict())


def test_convnet_rejects_an_unknown_variant_naming_the_choices(compose):
    with pytest.raises(UserError, match="model.net.norm='weight'.*batch, group, layer, none"):
        validate(compose("model=convnet", "model.net.norm=weight"))
    with pytest.raises(UserError, match="model.net.pool='min'.*max, avg, stride"):
        validate(compose("model=convnet", "model.net.pool=min"))
    with pytest.raises(UserError, match="model.net.pool='stride'.*avg, max"):
        validate(compose("model=lenet5", "model.net.pool=stride"))  # LeNet's own choices
    with pytest.raises(ValueError, match="model.net.norm='group' contradicts .*batch_norm=true"):
        ConvNet(in_channels=1, num_classes=10, image_size=28, batch_norm=True, norm="group")


def test_the_matched_mlp_has_the_convnets_parameter_count(compose):
    cfg = compose("model=mlp_matched")
    mlp = MLP(in_channels=1, num_classes=10, image_size=28, hidden=cfg.model.net.hidden)
    assert abs(_params(mlp) / 824_970 - 1) < 0.001  # 825,220


def _shifts(acc: float, one: float, two: float) -> dict:
    return {"test/acc": acc, "test/acc_shift1": one, "test/acc_shift2": two}


def test_pooling_holds_when_shifts_cost_the_pooled_network_less():
    rows = seeds(_shifts(0.97, 0.95, 0.85), model__net__pool="max")
    rows += seeds(_shifts(0.96, 0.90, 0.60), model__net__pool="stride")
    verdict = layer_claims.pooling(rows).verdict
    assert verdict.startswith("holds: a 1-pixel shift costs the pooled network less (2.0 vs 6.0 "
                              "points lost; difference +4.0 points, 95 % CI"), verdict  # fmt: skip
    same = seeds(_shifts(0.96, 0.90, 0.60), model__net__pool="max")
    verdict = layer_claims.pooling(same + rows[3:]).verdict
    assert verdict.startswith("does not hold at this budget: a 1-pixel shift does not cost")


def test_pooling_with_an_untrained_network_is_never_holds():
    rows = seeds(_shifts(0.97, 0.95, 0.85), model__net__pool="max")
    rows += seeds(_shifts(0.15, 0.05, 0.02), model__net__pool="stride")
    verdict = layer_claims.pooling(rows).verdict
    assert verdict.startswith("not judged: the strided one did not train")


def test_sharing_compares_overfitting_gaps_not_accuracies():
    dense = seeds({"train/acc": 1.0, "test/acc": 0.85, "params": 825_220}, model="mlp_matched")
    conv = seeds({"train/acc": 0.99, "test/acc": 0.95, "params": 824_970}, model="convnet")
    verdict = layer_claims.sharing(dense + conv).verdict
    assert verdict.startswith("holds: with the same number of parameters the ConvNet overfits")
    assert "gap 4.0 vs 15.0 points; difference +11.0 points, 95 % CI" in verdict
    # A ConvNet that is more accurate but overfits as much does not show the claim.
    fits = seeds({"train/acc": 1.0, "test/acc": 0.852, "params": 824_970}, model="convnet")
    assert layer_claims.sharing(dense + fits).verdict.startswith("does not hold at this budget")
    flat = seeds({"train/acc": 0.2, "test/acc": 0.2, "params": 825_220}, model="mlp_matched")
    verdict = layer_claims.sharing(flat + conv).verdict
    assert verdict.startswith("not judged: the MLP did not train"), verdict


def _norms(accs: dict, gaps: dict | None = None) -> list:
    rows = []
    for (norm, batch), acc in accs.items():
        gap = (gaps or {}).get((norm, batch), 0.02)
        rows += seeds({"test/acc": acc, "train/acc": acc + gap}, model__net__norm=norm,
                      data__batch_size=batch)  # fmt: skip
    return rows


def test_normalization_judges_regularizing_and_batch_size_dependence():
    accs = {("batch", 2): 0.80, ("batch", 64): 0.97, ("group", 2): 0.95,
            ("group", 64): 0.96, ("layer", 2): 0.94, ("layer", 64): 0.95,
            ("none", 2): 0.93, ("none", 64): 0.94}  # fmt: skip
    gaps = {("none", 64): 0.06}  # BatchNorm's 2 points against 6 without
    verdict = layer_claims.normalization(_norms(accs, gaps)).verdict
    assert verdict.startswith("holds: BatchNorm regularizes (at batch 64: gap 2.0 vs 6.0 points; "
                              "difference +4.0 points, 95 % CI"), verdict  # fmt: skip
    assert "BatchNorm loses accuracy at batch 2 (batch 64 → 2: +17.0 points" in verdict
    assert "batch 64 → 2 costs BatchNorm +17.0 points, group norm +1.0" in verdict
    # BatchNorm at batch 2 failing outright is the sentence's prediction, not a failed premise.
    collapsed = {**accs, ("batch", 2): 0.10}
    assert layer_claims.normalization(_norms(collapsed, gaps)).verdict.startswith("holds")
    # GroupNorm failing at batch 2 is: the alternative the lecture recommends did not train.
    broken = {**accs, ("group", 2): 0.10}
    verdict = layer_claims.normalization(_norms(broken, gaps)).verdict
    assert verdict.startswith("not judged: norm=group, batch 2 did not train")
    flat = layer_claims.normalization(_norms({**accs, ("batch", 2): 0.97})).verdict
    assert flat.startswith("does not hold at this budget: BatchNorm does not regularize (at batch "
                           "64: gap 2.0 vs 2.0 points"), flat  # fmt: skip
    assert "BatchNorm loses no accuracy at batch 2 (batch 64 → 2: 0.0 points" in flat
    assert "more than group norm" not in flat  # no loss of its own: nothing to compare
    # Nothing overfits: whether BatchNorm narrows the gap cannot be judged.
    none = layer_claims.normalization(_norms(accs, {k: 0.0 for k in accs})).verdict
    assert ("not judged: BatchNorm regularizes: the network without normalization at batch 64 "
            "does not overfit (gap 0.0 points") in none, none  # fmt: skip


def _strategies(size: int, probe: float, tuned: float) -> list:
    rows = []
    for strategy, acc in (("linear_probe", probe), ("finetune", tuned)):
        rows += seeds({"val/acc_best": acc, "test/acc": acc, "train_images": size},
                      transfer=strategy, optimizer__lr=0.01)  # fmt: skip
    return rows


def test_probe_finetune_needs_finetunings_lead_to_grow_with_data():
    verdict = transfer_claims.probe_finetune(
        _strategies(200, 0.80, 0.81) + _strategies(2000, 0.85, 0.95)
    ).verdict
    assert verdict.startswith("holds: with 2,000 images fine-tuning beats the probe (+10.0")
    assert "lead +1.0 points with 200 images, +10.0 with 2,000; difference +9.0 points" in verdict
    same = transfer_claims.probe_finetune(
        _strategies(200, 0.70, 0.80) + _strategies(2000, 0.85, 0.95)
    ).verdict
    assert same.startswith("partly holds") and "but its lead does not grow" in same
    untrained = transfer_claims.probe_finetune(
        _strategies(200, 0.12, 0.11) + _strategies(2000, 0.85, 0.95)
    ).verdict
    assert untrained.startswith("not judged: linear_probe with 200 images")


NUMBERS = {
    "resnet50": {"top5_err": 7.138, "params": 25_557_032, "macs": 4_089_184_256,
                 "conv_macs": 4_087_136_256},
    "vgg16": {"top5_err": 9.618, "params": 138_357_544, "macs": 15_470_264_320,
              "conv_macs": 15_346_630_656},
    "resnet50_v1": {"macs": 3_857_973_248},
}  # fmt: skip


def test_imagenet_numbers_are_counted_here_and_reconcile_the_lectures():
    counted = imagenet.counted()  # torchvision's meta, cnnlab's counter
    assert {k: pytest.approx(v) for k, v in counted.items()} == NUMBERS
    finding = imagenet.imagenet([], NUMBERS)
    assert finding.verdict.startswith("holds: ResNet-50 errs less (7.14 % vs 9.62 % top-5)")
    assert "the paper's v1 counts 3.86 G here" in finding.table
    assert "VGG-16's 15.3 B are its convolutions alone (15.35 G here)" in finding.table
    worse = {**NUMBERS, "resnet50": {**NUMBERS["resnet50"], "top5_err": 10.0}}
    assert imagenet.imagenet([], worse).verdict.startswith("partly holds")


def _gradcam_job(folder, corr: float, seed: int, shade: int):
    """A finished shortcut-study job: its config and one logged 8-digit Grad-CAM grid."""
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("callbacks:\n  gradcam:\n    num_images: 8\n")
    writer = SummaryWriter(str(folder / "tb"))
    writer.add_image("gradcam/gradcam", np.full((80, 30, 3), shade, np.uint8), 0,
                     dataformats="HWC")  # fmt: skip
    writer.close()
    return Job(folder, {"data.source.correlation": str(corr), "seed": str(seed)}, {"ok": 1})


def test_gradcam_maps_show_both_networks_grids_from_their_jobs(tmp_path):
    from PIL import Image

    jobs = [_gradcam_job(tmp_path / f"{c}-{s}", c, s, 40 * s + 100 * c)
            for c in (0.0, 1.0) for s in (2, 1)]  # fmt: skip
    data = cam_grid.png(jobs)
    picture = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert picture.shape[0] > 100 and picture.shape[1] > 300
    assert cam_grid.png(jobs[:2]) is None  # one network only: nothing to compare
    missing = [Job(tmp_path / "gone", j.set, j.metrics) for j in jobs]
    assert cam_grid.png(missing) is None


def _premise_fails(verdict: str, who: str) -> None:
    assert verdict.startswith("not judged:") and f"{who} did not train" in verdict


def test_the_earlier_claims_never_hold_with_an_untrained_network():
    from cnnlab.lecture import claims

    mlp = seeds({"test/acc": 0.12, "test/acc_shifted": 0.05}, model="mlp")
    conv = seeds({"test/acc": 0.98, "test/acc_shifted": 0.90}, model="convnet")
    _premise_fails(claims.connectivity(mlp + conv).verdict, "the MLP")

    rows = []
    for size, none, aug in ((300, 0.15, 0.90), (3600, 0.97, 0.98)):  # the winner's rival at 15 %
        rows += seeds({"test/acc": none, "train_images": size}, augment="none",
                      data__train_limit=size)  # fmt: skip
        rows += seeds({"test/acc": aug, "train_images": size}, augment="mnist",
                      data__train_limit=size)  # fmt: skip
    _premise_fails(claims.augmentation(rows).verdict, "augment=none with 300 images")

    # Five classes (digits 5–9): chance is 20 %, so 35 % has not trained (it would at ten).
    five = {"num_classes": 5}
    rows = seeds({"val/acc_best": 0.6, "test/acc": 0.2, **five}, transfer="scratch",
                 optimizer__lr=0.01)  # fmt: skip
    rows += seeds({"val/acc_best": 0.35, "test/acc": 0.35, **five}, transfer="finetune",
                  optimizer__lr=0.01)  # fmt: skip
    _premise_fails(transfer_claims.transfer(rows).verdict, "finetune")
    assert (
        "(test accuracy 35.0 % < 40.0 %, chance 20.0 %)" in transfer_claims.transfer(rows).verdict
    )

    rows = []
    for lr, plain, bn in ((0.01, 0.97, 0.20), (0.5, 0.11, 0.25)):  # BatchNorm never trained
        rows += seeds({"test/acc": plain}, model="convnet", optimizer__lr=lr)
        rows += seeds({"test/acc": bn}, model="convnet_bn", optimizer__lr=lr)
    verdict = claims.batchnorm(rows).verdict
    assert verdict.startswith("not judged: the BatchNorm ConvNet did not train")


def test_a_bad_convnet_variant_is_one_error_line(command):
    proc = command("summary", "model=convnet", "model.net.norm=weight")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: model.net.norm='weight' is not valid; valid: batch, group, layer, none, or null"
    )

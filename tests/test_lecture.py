"""`make lecture`: each claim's verdict follows from its numbers (the command itself, end to
end: tests/test_lecture_command.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from scipy.stats import ttest_ind

from cnnlab.lecture import claims, figures
from cnnlab.lecture.results import Job
from cnnlab.lecture.run import shifted

REPO = Path(__file__).resolve().parents[1]
LECTURE = "cnnlab.commands.lecture"


def job(metrics: dict, curves: dict | None = None, **overrides) -> Job:
    return Job(Path("."), {k.replace("__", "."): str(v) for k, v in overrides.items()},
               {"params": 1000, "num_classes": 10, **metrics}, curves=curves or {})  # fmt: skip


COUNTS = ("params", "train_images", "num_classes", "train/nonfinite_skipped")
JITTER = 0.002  # seed-to-seed spread the three seeds get around each value


def seeds(metrics: dict, curves: dict | None = None, **overrides) -> list[Job]:
    """Three seeds of one configuration: each rate or loss at its value −, ±0 and + JITTER."""
    return [job({k: v if k in COUNTS else v + d for k, v in metrics.items()}, curves, seed=s,
                **overrides) for s, d in ((1, -JITTER), (2, 0.0), (3, JITTER))]  # fmt: skip


def seeds_of(values: list[dict], **overrides) -> list[Job]:
    return [job(m, seed=s, **overrides) for s, m in enumerate(values, start=1)]


def test_connectivity_holds_only_when_the_convnet_wins_and_degrades_less():
    mlp = seeds({"test/acc": 0.95, "test/acc_shifted": 0.60}, model="mlp")
    conv = seeds({"test/acc": 0.98, "test/acc_shifted": 0.90}, model="convnet")
    verdict = claims.connectivity(mlp + conv).verdict
    assert verdict.startswith("holds: the ConvNet beats the MLP (+3.0 points, 95 % CI +2.5 to "
                              "+3.5, p < 0.001, 3+3 seeds; minimum 1 point)"), verdict  # fmt: skip
    worse = seeds({"test/acc": 0.98, "test/acc_shifted": 0.30}, model="convnet")
    verdict = claims.connectivity(mlp + worse).verdict
    assert verdict.startswith("partly holds: the ConvNet beats the MLP"), verdict
    assert "but shifted digits do not cost the ConvNet less than the MLP (68.0 vs 35.0" in verdict


def test_connectivity_within_the_seed_spread_does_not_hold():
    mlp = seeds_of([{"test/acc": a, "test/acc_shifted": 0.6} for a in (0.90, 0.95, 1.00)],
                   model="mlp")  # fmt: skip
    conv = seeds_of([{"test/acc": a, "test/acc_shifted": 0.9} for a in (0.93, 0.96, 0.99)],
                    model="convnet")  # fmt: skip
    verdict = claims.connectivity(mlp + conv).verdict  # +1 point, spread 5 points
    assert verdict.startswith("partly holds"), verdict
    # Welch's test, as scipy computes it: the interval straddles zero.
    welch = ttest_ind([0.93, 0.96, 0.99], [0.90, 0.95, 1.00], equal_var=False)
    low, high = welch.confidence_interval(0.95)
    assert (
        f"but the ConvNet does not beat the MLP (+1.0 points, 95 % CI {low * 100:.1f} to "
        f"+{high * 100:.1f}, p = {welch.pvalue:.3f}, 3+3 seeds; minimum 1 point)"
    ) in verdict


def test_one_seed_or_two_is_never_judged():
    mlp = seeds({"test/acc": 0.95, "test/acc_shifted": 0.60}, model="mlp")
    conv = seeds({"test/acc": 0.98, "test/acc_shifted": 0.90}, model="convnet")
    assert claims.connectivity(mlp[:1] + conv[:1]).verdict == (
        "not judged: 1 seed(s) for the MLP and others; a test across seeds needs at least 3 "
        "(seed=1,2,3)"
    )
    assert claims.connectivity(mlp + conv[:2]).verdict.startswith("not judged: 2 seed(s) for the")


def _bn_rows(grid, curves: dict) -> list[Job]:
    rows = []
    for lr, plain, bn in grid:
        for model, (acc, kind) in (("convnet", plain), ("convnet_bn", bn)):
            rows += seeds({"test/acc": acc, **LOSS[kind]}, curves[kind], model=model,
                          optimizer__lr=lr)  # fmt: skip
    return rows


# Final training loss of a run that trains, of one that blew up (a logged step past 2 × ln 10)
# and of one whose steps went non-finite (skipped by the guard).
LOSS = {
    "fast": {"train/loss": 0.3},
    "slow": {"train/loss": 0.5},
    "collapsed": {"train/loss": 2.31},
    "nan": {"train/loss": 1.0, "train/nonfinite_skipped": 4},
}
CURVES = {"fast": {"val/acc": [(1, 0.9), (2, 0.98)]}, "slow": {"val/acc": [(1, 0.5), (2, 0.9)]},
          "collapsed": {"val/acc": [(1, 0.1)], "train/loss_step": [(9, 2.3), (19, 31.0)]},
          "nan": {"val/acc": [(1, 0.1)]}}  # fmt: skip


def test_batchnorm_judges_stability_and_acceleration():
    grid = ((0.01, (0.97, "slow"), (0.96, "fast")), (0.5, (0.11, "collapsed"), (0.70, "fast")))
    finding = claims.batchnorm(_bn_rows(grid, CURVES))
    assert finding.verdict.startswith(
        "holds: at lr 0.5, where the plain ConvNet diverges (3 of 3 seeds) but trains at lr 0.01, "
        "the BatchNorm one trains (70.0 % vs 11.0 %: +59.0 points"
    ), finding.verdict
    assert (
        "BatchNorm accelerates training (at lr 0.01, the plain network's best, validation "
        "accuracy after the first epoch: +40.0 points" in finding.verdict
    )
    assert finding.verdict.endswith("best over the grid 96.0 % with BatchNorm, 97.0 % without")
    assert "| convnet | 0.5 | 11.00 ± 0.20 | 10.0 | 3 of 3 |" in finding.table
    plot = finding.plot  # error bars: one per rate and series
    assert {k: len(v) for k, v in plot["errors"].items()} == {"convnet": 2, "convnet_bn": 2}
    assert figures.png("batchnorm", plot)[:4] == b"\x89PNG"
    nan = ((0.01, (0.97, "slow"), (0.96, "fast")), (0.5, (0.11, "nan"), (0.70, "fast")))
    assert claims.batchnorm(_bn_rows(nan, CURVES)).verdict.startswith("holds: at lr 0.5")


def test_batchnorm_stability_needs_a_divergence_above_a_rate_that_trains():
    """The plain network merely slow at a low rate (finite, falling loss) is not divergence,
    and a high rate that breaks it with no lower rate that trains proves nothing."""
    slow = {"val/acc": [(1, 0.12)], "train/loss_step": [(9, 2.31), (19, 2.298)]}
    low = ((0.0001, (0.158, "slow"), (0.356, "fast")), (0.001, (0.39, "slow"), (0.60, "fast")))
    verdict = claims.batchnorm(_bn_rows(low, {**CURVES, "slow": slow})).verdict
    assert "not judged: stabilizes: no rate in the grid makes the plain ConvNet diverge" in verdict
    assert "where the plain ConvNet diverges" not in verdict, verdict
    only_high = ((0.5, (0.11, "collapsed"), (0.70, "fast")),)
    verdict = claims.batchnorm(_bn_rows(only_high, CURVES)).verdict
    assert "not judged: stabilizes" in verdict and "trains at lr none" in verdict


def test_a_run_diverged_when_its_loss_went_non_finite_blew_up_or_never_fell():
    def run(final: float, steps: list[float], skipped: int = 0) -> Job:
        return job({"train/loss": final, "train/nonfinite_skipped": skipped},
                   {"train/loss_step": list(enumerate(steps))})  # fmt: skip

    assert claims.diverged(run(0.3, [2.3, 1.0], skipped=1))
    assert claims.diverged(run(float("nan"), [2.3]))
    assert claims.diverged(run(1.2, [2.3, 40.0, 1.5]))  # blew up, came back
    assert claims.diverged(run(2.6, [2.2, 2.5, 2.6]))  # rose past 1.1 × its start
    assert not claims.diverged(run(2.31, [2.3, 2.31]))  # a tiny rate has not moved it yet
    assert not claims.diverged(run(2.298, [2.31, 2.298]))  # slow, but learning
    assert not claims.diverged(run(1.8, [2.2, 2.43, 1.7]))  # a bump is not divergence
    # A spike between logged steps shows in the epoch's mean.
    spiked = run(2.0, [2.3, 2.1])
    spiked.curves["train/loss"] = [(50, 9.0), (100, 2.0)]
    assert claims.diverged(spiked)


def residual_sweep(accs: dict, losses: dict) -> list[Job]:
    rows = []
    for name, acc in accs.items():
        kind, depth = name.split("-")
        # Hydra's sweeper writes the booleans back as True / False.
        rows += seeds({"test/acc": acc, "train/loss": losses[name]},
                      model__net__residual=kind == "residual", model__net__depth=depth)  # fmt: skip
    return rows


def test_residual_holds_only_when_every_part_of_the_sentence_does():
    accs = {"residual-20": 0.97, "residual-56": 0.975, "plain-20": 0.96, "plain-56": 0.90}
    losses = {"residual-20": 0.2, "residual-56": 0.18, "plain-20": 0.25, "plain-56": 0.5}
    verdict = claims.residual(residual_sweep(accs, losses)).verdict
    assert verdict.startswith("holds: plain-56 trains worse than plain-20 (final training loss "
                              "0.500 vs 0.250: +0.250, 95 % CI"), verdict  # fmt: skip
    assert (
        "residual-56 trains no worse than residual-20 (final training loss 0.180 vs 0.200: "
        "-0.020, 95 % CI -0.025 to -0.015, p < 0.001, 3+3 seeds; at most 0.05)" in verdict
    )


def test_residual_deeper_residual_training_worse_is_never_holds():
    """A real earlier run: residual-56 below residual-20 (training loss 1.240 vs 1.113)."""
    accs = {"residual-20": 0.706, "residual-56": 0.611, "plain-20": 0.65, "plain-56": 0.35}
    losses = {"residual-20": 1.113, "residual-56": 1.240, "plain-20": 1.2, "plain-56": 1.9}
    verdict = claims.residual(residual_sweep(accs, losses)).verdict
    assert verdict.startswith("partly holds") and "but residual-56 may train worse than" in verdict


def test_residual_with_an_untrained_network_is_never_holds():
    accs = {"residual-20": 0.97, "residual-56": 0.975, "plain-20": 0.96, "plain-56": 0.12}
    losses = {"residual-20": 0.2, "residual-56": 0.18, "plain-20": 0.25, "plain-56": 2.25}
    verdict = claims.residual(residual_sweep(accs, losses)).verdict
    assert verdict == ("not judged: plain-56 did not train (test accuracy 12.0 % < 32.5 %, "
                       "chance 10.0 %)")  # fmt: skip


def test_residual_compares_the_sweeps_shallowest_and_deepest_networks():
    """A notebook's smaller sweep (8 and 32 layers) is judged like the lecture's 20 and 56; a
    sweep with one depth gets no verdict."""
    accs = {"residual-8": 0.88, "residual-32": 0.94, "plain-8": 0.90, "plain-32": 0.57}
    losses = {"residual-8": 0.99, "residual-32": 0.67, "plain-8": 0.95, "plain-32": 1.29}
    verdict = claims.residual(residual_sweep(accs, losses)).verdict
    assert verdict.startswith("holds: plain-32 trains worse than plain-8 (final training loss "
                              "1.290 vs 0.950: +0.340"), verdict  # fmt: skip
    assert "residual-32 trains better than plain-32" in verdict
    one = {"residual-20": 0.97, "plain-20": 0.96}
    finding = claims.residual(residual_sweep(one, {"residual-20": 0.2, "plain-20": 0.25}))
    assert finding.verdict == "no verdict: a second depth did not finish"


def test_augmentation_gain_must_shrink_with_more_data():
    rows = []
    for size, none, aug in ((300, 0.85, 0.90), (3600, 0.97, 0.98)):
        rows += seeds({"test/acc": none, "train_images": size}, augment="none",
                      data__train_limit=size)  # fmt: skip
        rows += seeds({"test/acc": aug, "train_images": size}, augment="mnist",
                      data__train_limit=size)  # fmt: skip
    verdict = claims.augmentation(rows).verdict
    assert verdict.startswith("holds: augmentation helps with little data (with 300 training "
                              "images: +5.0 points"), verdict  # fmt: skip
    assert (
        "more so with less data (gain +5.0 points with 300 images, +1.0 with 3,600; "
        "difference +4.0 points, 95 % CI" in verdict
    )
    flat = [j for j in rows if j.set["data.train_limit"] == "300"] + [
        j for k, a in (("none", 0.80), ("mnist", 0.85))
        for j in seeds({"test/acc": a, "train_images": 3600}, augment=k, data__train_limit=3600)
    ]  # fmt: skip
    assert "but not more so with less data" in claims.augmentation(flat).verdict


def test_transfer_picks_each_strategys_rate_by_validation_not_test():
    five = {"num_classes": 5}
    rows = seeds({"val/acc_best": 0.6, "test/acc": 0.6, **five}, transfer="scratch",
                 optimizer__lr=0.01)  # fmt: skip
    rows += seeds({"val/acc_best": 0.9, "test/acc": 0.85, **five}, transfer="finetune",
                  optimizer__lr=0.01)  # fmt: skip
    # Higher test accuracy but lower validation: never chosen.
    rows += seeds({"val/acc_best": 0.5, "test/acc": 0.99, **five}, transfer="finetune",
                  optimizer__lr=0.1)  # fmt: skip
    finding = claims.transfer(rows)
    assert "| finetune | 0.01 |" in finding.table
    assert finding.verdict.startswith(
        "holds: finetune beats training from scratch (+25.0 points, 95 % CI"
    ), finding.verdict


def test_gradcam_holds_when_the_shortcut_network_points_outside_the_digit():
    rows = seeds({"val/pointing_game": 0.8, "test/acc": 0.95}, data__source__correlation=0.0)
    rows += seeds({"val/pointing_game": 0.2, "test/acc": 0.105, "train/acc": 0.99},
                  data__source__correlation=1.0)  # fmt: skip
    assert claims.gradcam(rows).verdict.startswith("holds: Grad-CAM shows the shortcut")


@pytest.mark.parametrize(
    ("shortcut", "honest", "expect"),
    [  # untrained networks (2 batches, seed 3: 10.2 % and 18.2 %): never "holds"
        ({"val/pointing_game": 0.05, "test/acc": 0.102, "train/acc": 0.15},
         {"val/pointing_game": 0.5, "test/acc": 0.182},
         "not judged: the network without a shortcut did not train"),
        ({"val/pointing_game": 0.05, "test/acc": 0.102, "train/acc": 0.25},
         {"val/pointing_game": 0.9, "test/acc": 0.95},
         "not judged: the shortcut network did not learn the shortcut"),
        # a gap smaller than the minimum effect
        ({"val/pointing_game": 0.75, "test/acc": 0.12, "train/acc": 0.99},
         {"val/pointing_game": 0.8, "test/acc": 0.95},
         "does not hold at this budget: Grad-CAM does not show the shortcut"),
    ],
)  # fmt: skip
def test_gradcam_never_holds_without_its_premise_or_minimum(shortcut, honest, expect):
    rows = seeds(shortcut, data__source__correlation=1.0)
    rows += seeds(honest, data__source__correlation=0.0)
    assert claims.gradcam(rows).verdict.startswith(expect)
    one_seed = [r for r in rows if r.set["seed"] == "1"]
    assert claims.gradcam(one_seed).verdict.startswith("not judged: 1 seed(s)")


def test_shifted_moves_each_image_three_pixels_in_its_direction():
    images = torch.zeros(4, 1, 10, 10, dtype=torch.uint8)
    images[:, 0, 5, 5] = 255
    out = shifted(images, 3)
    where = [tuple(torch.nonzero(o[0])[0].tolist()) for o in out]
    assert where == [(5, 8), (5, 2), (8, 5), (2, 5)]  # right, left, down, up

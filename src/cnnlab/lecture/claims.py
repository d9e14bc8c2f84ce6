"""Each lecture claim: the lecture's words, the statement tested (narrower than, or a paraphrase
of, those words), the condition that tests it, the sweep that runs it, and the verdict computed
from the sweep's own numbers (the rules: `verdicts.py`, the test: `stats.py`). Nothing here is
fixed in advance."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.lecture.imagenet import imagenet
from cnnlab.lecture.layer_claims import lost_on, normalization, pooling, sharing
from cnnlab.lecture.results import Job, by, mean, mean_std, std, table
from cnnlab.lecture.stats import LEVEL, MIN_SEEDS, between, contrast
from cnnlab.lecture.training_claims import BLOWUP, RISE, batchnorm, diverged, residual  # noqa: F401
from cnnlab.lecture.transfer_claims import probe_finetune, transfer
from cnnlab.lecture.verdicts import (
    FIT_SHARE,
    MIN_LOSS,
    MIN_POINTS,
    TRAINED_SHARE,
    Finding,
    few_seeds,
    judge,
    level,
    pts,
    signed,
    test,
    untrained,
    values,
)

# How a claim's tested statement relates to the lecture's words, said beside it in the report.
READINGS = {
    "narrower": "narrower than the lecture's words",
    "paraphrase": "a paraphrase of the lecture's words, not a quote",
}


@dataclass(frozen=True)
class Claim:
    name: str
    quotes: tuple[str, ...]  # the lecture's words, verbatim (a test finds each in the lecture)
    tested: str  # the statement the sweep tests, in its own words
    reading: str  # how `tested` relates to the quotes: "narrower" or "paraphrase"
    judge: Callable[[list[Job]], Finding]
    condition: str = ""  # what the verdict compares, and its test; printed under the sentence
    # The sweeps (conf/experiment/lecture/<name>) whose jobs the verdict reads; () for a claim
    # judged from published and counted numbers alone. Default: the claim's own sweep.
    sweeps: tuple[str, ...] | None = None

    @property
    def experiments(self) -> tuple[str, ...]:
        return (self.name,) if self.sweeps is None else self.sweeps


def connectivity(jobs: list[Job]) -> Finding:
    groups = by(jobs, "model")
    rows, summary = [], {}
    for (model,), members in groups.items():
        acc, shifted = mean(members, "test/acc"), mean(members, "test/acc_shifted")
        summary[model] = (acc, shifted, acc - shifted)
        rows.append([model, f"{int(members[0].get('params')):,}", len(members),
                     mean_std(members, "test/acc", 100), mean_std(members, "test/acc_shifted", 100),
                     pts(acc - shifted)])  # fmt: skip
    if ("mlp",) not in groups or ("convnet",) not in groups:
        return Finding(table(["model"], []), "no verdict: a model's jobs did not finish", {})
    m, c = groups[("mlp",)], groups[("convnet",)]
    named = {"the MLP": m, "the ConvNet": c}
    drop = lost_on("test/acc_shifted")
    verdict = judge(
        [test(between(values(c, "test/acc"), values(m, "test/acc")), "the ConvNet beats the MLP",
              "the ConvNet does not beat the MLP"),
         test(between(values(m, drop), values(c, drop)),
              "shifted digits cost the ConvNet less than the MLP",
              "shifted digits do not cost the ConvNet less than the MLP",
              what=f"{pts(summary['convnet'][2])} vs {pts(summary['mlp'][2])} points lost: ")],
        few_seeds(named) or untrained(named),
    )  # fmt: skip
    header = ["model", "parameters", "seeds", "test acc %", "shifted test acc %", "drop, points"]
    plot = {"kind": "bars", "ylabel": "test accuracy %", "groups": ["test", "shifted"],
            "series": {m: [v[0] * 100, v[1] * 100] for m, v in summary.items()},
            "errors": {m: [std(g, "test/acc") * 100, std(g, "test/acc_shifted") * 100]
                       for (m,), g in groups.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def augmentation(jobs: list[Job]) -> Finding:
    groups = by(jobs, "data.train_limit", "augment")
    sizes = list(dict.fromkeys(size for size, _ in groups))
    rows, gains, groups_at = [], {}, {}
    for size in sizes:
        none, aug = groups.get((size, "none"), []), groups.get((size, "mnist"), [])
        if not none or not aug:
            continue
        images = int(none[0].get("train_images", 0)) or size
        gains[images] = mean(aug, "test/acc") - mean(none, "test/acc")
        groups_at[images] = (none, aug)
        rows.append([f"{images:,}", mean_std(none, "test/acc", 100), mean_std(aug, "test/acc", 100),
                     pts(gains[images])])  # fmt: skip
    if len(gains) < 2:
        return Finding(table(["training images"], rows), "no verdict: too few sizes finished", {})
    least, most = min(gains), max(gains)
    (none_few, aug_few), (none_most, aug_most) = groups_at[least], groups_at[most]
    acc = {k: values(m, "test/acc") for k, m in
           {"nf": none_few, "af": aug_few, "nm": none_most, "am": aug_most}.items()}  # fmt: skip
    named = {f"{k} with {size:,} images": m for size, pair in groups_at.items()
             for k, m in zip(("augment=none", "augment=mnist"), pair, strict=True)}  # fmt: skip
    verdict = judge(
        [test(between(acc["af"], acc["nf"]), "augmentation helps with little data",
              "augmentation does not help with little data",
              what=f"with {least:,} training images: "),
         test(contrast((1, acc["af"]), (-1, acc["nf"]), (-1, acc["am"]), (1, acc["nm"])),
              "more so with less data", "not more so with less data",
              what=f"gain {signed(gains[least])} points with {least:,} images, "
                   f"{signed(gains[most])} with {most:,}; difference ")],
        few_seeds(named) or untrained(named),
    )  # fmt: skip
    header = ["training images", "augment=none, test acc %", "augment=mnist, test acc %",
              "gain, points"]  # fmt: skip
    plot = {"kind": "lines", "xlabel": "training images", "x": sorted(gains), "logx": True,
            "ylabel": "gain from augmentation, points",
            "series": {"mnist − none": [gains[k] * 100 for k in sorted(gains)]}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


# The least pointing-game difference that counts as "shows the shortcut", in fraction of images.
POINTING_MIN = 0.10


# The shortcut was learned when the shortcut network's accuracy on its marked training digits
# exceeds its accuracy on the randomly marked test digits by this much (fraction).
SHORTCUT_GAP = 0.20


def _no_shortcut(shortcut: list[Job]) -> str:
    """The premise of the shortcut study: '' when the shortcut network learned the mark."""
    marked, unmarked = mean(shortcut, "train/acc"), mean(shortcut, "test/acc")
    if math.isnan(marked):
        return "the shortcut network's training accuracy was not recorded"
    if marked >= level(shortcut, TRAINED_SHARE) and marked - unmarked >= SHORTCUT_GAP:
        return ""
    return (f"the shortcut network did not learn the shortcut (training accuracy on marked digits "
            f"{pts(marked)} %, test on randomly marked {pts(unmarked)} %)")  # fmt: skip


def _key(groups: dict, value: float) -> str:
    """The sweep's spelling of a correlation value (0, 0.0, …)."""
    return next(k for (k,) in groups if float(k) == value)


def gradcam(jobs: list[Job]) -> Finding:
    groups = by(jobs, "data.source.correlation")
    rows, point, acc = [], {}, {}
    for (corr,), members in groups.items():
        key = float(corr)
        point[key], acc[key] = mean(members, "val/pointing_game"), mean(members, "test/acc")
        label = "shortcut (mark = label)" if key > 0.5 else "no shortcut (mark random)"
        rows.append([corr, label, mean_std(members, "val/pointing_game", 100),
                     mean_std(members, "test/acc", 100)])  # fmt: skip
    if not {0.0, 1.0} <= set(point):
        return Finding(table(["correlation"], rows), "no verdict: a variant did not finish", {})
    shortcut, honest = groups[(_key(groups, 1.0),)], groups[(_key(groups, 0.0),)]
    named = {"the network without a shortcut": honest, "the shortcut network": shortcut}
    verdict = judge(
        [test(between(values(honest, "val/pointing_game"), values(shortcut, "val/pointing_game")),
              "Grad-CAM shows the shortcut: the shortcut network's maps point inside the digit "
              "less often", "Grad-CAM does not show the shortcut",
              minimum=POINTING_MIN,
              what=f"pointing game {pts(point[1.0])} % with the shortcut vs {pts(point[0.0])} % "
                   f"without: ")],
        few_seeds(named) or untrained({"the network without a shortcut": honest})
        or _no_shortcut(shortcut),
    )  # fmt: skip
    header = ["correlation", "training data", "pointing game %", "test acc %"]
    plot = {"kind": "bars", "ylabel": "%", "groups": ["pointing game", "test accuracy"],
            "series": {("shortcut" if k else "no shortcut"): [point[k] * 100, acc[k] * 100]
                       for k in sorted(point)},
            "errors": {("shortcut" if float(k) else "no shortcut"):
                       [std(g, "val/pointing_game") * 100, std(g, "test/acc") * 100]
                       for (k,), g in groups.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def _at(share: float, k: int) -> str:
    """The level a share of the way from chance to 100 % is for k classes, in %."""
    return f"{(1 / k + share * (1 - 1 / k)) * 100:g} %"


PREMISE = (f"Premises: at least {MIN_SEEDS} seeds per configuration, and every network "
           f"compared trained (mean test accuracy ≥ chance + {TRAINED_SHARE:g} × (1 − chance): "
           f"{_at(TRAINED_SHARE, 10)} for ten digits, {_at(TRAINED_SHARE, 5)} for five). Each "
           f"part is Welch's t test across seeds: it holds when the {LEVEL * 100:g} % interval "
           f"lies above zero and the effect is at least {MIN_POINTS * 100:g} point (or "
           f"{MIN_LOSS:g} in loss).")  # fmt: skip
FITS = (f"Premises (the regularizing part): the reference network overfits (its gap above zero, "
        f"tested as above) and both networks fit their training digits (training accuracy ≥ "
        f"chance + {FIT_SHARE:g} × (1 − chance): {_at(FIT_SHARE, 10)} for ten "
        f"digits).")  # fmt: skip
CLAIMS = (
    Claim("connectivity",
          ("Convolutions exploit local connectivity and parameter sharing to scale to images",
           "Translation invariance"),
          "A ConvNet beats a dense network on images and is less thrown off when the object "
          "moves.", "paraphrase", connectivity,
          "ConvNet − MLP test accuracy, and the accuracy each loses on digits shifted by 3 "
          "pixels. " + PREMISE),
    Claim("batchnorm", ("Stabilizes and accelerates training of deep networks",),
          "\"Stabilizes\": at a learning rate that makes the plain ConvNet diverge, though it "
          "trains at a lower one, the BatchNorm ConvNet trains; \"accelerates\": it learns faster "
          "at the plain one's best rate.", "paraphrase", batchnorm,
          "Stabilizes: the lowest rate at which the plain ConvNet diverges in most seeds "
          f"(a non-finite loss, one that blows up past {BLOWUP:g} × ln k, or a last epoch's loss "
          f"above {RISE:g} × the first logged one), above a rate where it trains; there, "
          "BatchNorm − plain test "
          "accuracy (not judged when the grid has no such rate). Accelerates: at the plain "
          "network's best rate, BatchNorm − plain validation accuracy after the first epoch. "
          "The BatchNorm network must have trained at some rate. " + PREMISE),
    Claim("residual",
          ("BatchNorm + residual connections were the key unlocks for very deep networks",
           "Good optimization properties"),
          "A deeper plain network trains worse than a shallower one; the residual one does not "
          "(the degradation problem).", "paraphrase", residual,
          "Final training loss: plain-56 above plain-20, residual-56 not above residual-20 (the "
          f"interval's upper end below {MIN_LOSS:g}), residual-56 below plain-56. " + PREMISE),
    Claim("augmentation",
          ("The cheapest regularizer you’ll ever deploy.",
           "Increases effective dataset size, reduces overfitting"),
          "Augmentation raises test accuracy when training data is scarce, more so with less "
          "data.", "paraphrase", augmentation,
          "augment=mnist − augment=none test accuracy at the smallest training set, and that gain "
          "minus the gain at the largest. " + PREMISE),
    Claim("transfer", ("You almost never train a CNN from scratch.",),
          "Features pretrained on digits 0–4 beat training from scratch on digits 5–9 (200 "
          "training images).", "narrower", transfer,
          "Each pretrained strategy's test accuracy (its learning rate chosen on validation) "
          "minus training from scratch's. " + PREMISE),
    Claim("probe_finetune",
          ("Linear probe: freeze backbone, train only the head (fast, small data)",
           "Fine-tune: train everything with a small learning rate (best results, more data)"),
          "With the most training images fine-tuning beats the linear probe, and its lead grows "
          "with the data.", "narrower", probe_finetune,
          "The transfer sweep's 200 training images and this sweep's 2,000: fine-tune − linear "
          "probe test accuracy at the largest size, and that lead minus the lead at the smallest; "
          "each strategy's rate chosen on validation. " + PREMISE,
          sweeps=("transfer", "probe_finetune")),
    Claim("pooling", ("Local invariance",),
          "Max pooling makes the lecture's ConvNet lose less accuracy on digits shifted by 1 or 2 "
          "pixels than the same ConvNet striding instead.", "narrower", pooling,
          "The lecture's ConvNet with 2×2 max pooling against the same network whose "
          "convolutions step by 2 pixels instead (same output size and parameters, no pooling): "
          "the test accuracy each loses on test digits shifted by 1 and by 2 pixels, strided − "
          "pooled. " + PREMISE),
    Claim("sharing", ("Parameter sharing: reduce overfitting",),
          "With as many parameters and the same 500 digits, the ConvNet overfits less than a "
          "dense network.", "narrower", sharing,
          "An MLP widened to the ConvNet's parameter count (hidden 1,038: 825,220 against "
          "824,970) and the ConvNet, 500 training digits, no augmentation: overfitting gap = "
          "training accuracy (last epoch) − test accuracy per seed; MLP gap − ConvNet gap. "
          + PREMISE + " " + FITS),
    Claim("normalization",
          ("Acts as a mild regularizer",
           "BN’s statistics depend on batch size; for tiny batches or sequence models, switch to "
           "GroupNorm/LayerNorm."),
          "At the larger batch BatchNorm narrows the overfitting gap; at a tiny batch BatchNorm "
          "loses test accuracy, and loses more than GroupNorm and LayerNorm.", "narrower",
          normalization,
          "The lecture's ConvNet with BatchNorm, GroupNorm (8 groups), LayerNorm (one group) or "
          "no normalization, at a tiny and a larger batch (the same epochs): the overfitting gap "
          "at the larger batch without − with BatchNorm; BatchNorm's test accuracy at the larger "
          "batch − at the tiny one (a loss, not a smaller gain), and that loss minus GroupNorm's "
          "and LayerNorm's. Every network must have trained at the larger batch, the alternatives "
          "at the tiny one. " + PREMISE + " " + FITS),
    Claim("imagenet",
          ("ResNet50 compared to VGG:", "5.25% top-5 error vs. 7.1%", "25M vs. 138M",
           "3.8B Flops vs. 15.3B Flops"),
          "ResNet-50 has a lower ImageNet top-5 error, fewer parameters and fewer multiply-adds "
          "than VGG-16.", "narrower", imagenet,
          "No training: torchvision's published top-5 error of its IMAGENET1K_V1 weights, and "
          "parameters and multiply-adds counted by cnnlab (`make summary`) at 224×224, beside "
          "the lecture's. No seeds, so no test: each comparison is exact.", sweeps=()),
    Claim("gradcam",
          ("Use it to spot shortcut learning (e.g. model attending to background, watermarks, "
           "scanner artefacts).",),
          "A network trained with a label-giving mark attends to the mark: its Grad-CAM maximum "
          "falls inside the digit less often than an honest network's.", "narrower", gradcam,
          "Pointing game (Grad-CAM's maximum inside the digit) without the shortcut minus with "
          f"it, at least {POINTING_MIN * 100:g} points, Welch's test as above. Premises: at least "
          f"{MIN_SEEDS} seeds; the shortcut was learned (training accuracy on marked digits "
          "trained, as above, and ≥ "
          f"{SHORTCUT_GAP * 100:g} points above test accuracy on randomly marked ones); the "
          "network without it trained."),
)  # fmt: skip
# The report's order: the lecture's.
ORDER = ("connectivity", "sharing", "pooling", "batchnorm", "normalization", "residual", "imagenet",
         "augmentation", "transfer", "probe_finetune", "gradcam")  # fmt: skip
BY_NAME = {name: next(c for c in CLAIMS if c.name == name) for name in ORDER}

"""Each lecture claim: its sentence, the condition that tests the whole sentence, the sweep that
runs it, and the verdict computed from the sweep's own numbers (the rules: `verdicts.py`).
Nothing here is fixed in advance."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.lecture.imagenet import imagenet
from cnnlab.lecture.layer_claims import normalization, pooling, sharing
from cnnlab.lecture.results import Job, by, mean, mean_std, std, table
from cnnlab.lecture.transfer_claims import probe_finetune, transfer
from cnnlab.lecture.verdicts import (
    CHANCE,
    MIN_MARGIN,
    TRAINED,
    Finding,
    judge,
    part,
    pts,
    signed,
    spread,
    untrained,
)


@dataclass(frozen=True)
class Claim:
    name: str
    sentence: str  # the lecture's words
    judge: Callable[[list[Job]], Finding]
    condition: str = ""  # what the verdict compares, and the margin; printed under the sentence
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
    mlp, conv = summary.get("mlp"), summary.get("convnet")
    if mlp is None or conv is None:
        return Finding(table(["model"], []), "no verdict: a model's jobs did not finish", {})
    m, c = groups[("mlp",)], groups[("convnet",)]
    noise = spread(m, c)
    shift_noise = spread(m, c, metric="test/acc_shifted")
    beats, robust = conv[0] - mlp[0], mlp[2] - conv[2]
    verdict = judge(
        [part(beats > noise, "the ConvNet beats the MLP", "the ConvNet does not beat the MLP",
               f"{pts(beats)} points, margin {pts(noise)}"),
         part(robust > shift_noise, "shifted digits cost the ConvNet less than the MLP",
               "shifted digits do not cost the ConvNet less than the MLP",
               f"{pts(conv[2])} vs {pts(mlp[2])} points, margin {pts(shift_noise)}")],
        untrained({"the MLP": m, "the ConvNet": c}),
    )  # fmt: skip
    header = ["model", "parameters", "seeds", "test acc %", "shifted test acc %", "drop, points"]
    plot = {"kind": "bars", "ylabel": "test accuracy %", "groups": ["test", "shifted"],
            "series": {m: [v[0] * 100, v[1] * 100] for m, v in summary.items()},
            "errors": {m: [std(g, "test/acc") * 100, std(g, "test/acc_shifted") * 100]
                       for (m,), g in groups.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def _epochs_to(job: Job, level: float) -> float:
    """First epoch (1-based) whose val/acc reached `level`, inf if none did."""
    for epoch, (_, value) in enumerate(job.curves.get("val/acc", []), start=1):
        if value >= level:
            return epoch
    return math.inf


def batchnorm(jobs: list[Job], level: float = 0.97) -> Finding:
    """Two parts. Higher rates (and stability): some rate sends the plain ConvNet to chance
    (≤ 2× chance) while the BatchNorm one trains. Acceleration: at the plain network's own best
    rate, the BatchNorm one reaches `level` validation accuracy in fewer epochs (median)."""
    groups = by(jobs, "model", "optimizer.lr")
    rows, acc, sd, epochs = [], {}, {}, {}
    for (model, lr), members in groups.items():
        acc[model, float(lr)] = mean(members, "test/acc")
        sd[model, float(lr)] = std(members, "test/acc")
        epochs[model, float(lr)] = sorted(_epochs_to(j, level) for j in members)[len(members) // 2]
        rows.append([model, lr, mean_std(members, "test/acc", 100),
                     _epochs_text(epochs[model, float(lr)])])  # fmt: skip
    rates = sorted({lr for _, lr in acc})
    plain = {lr: acc.get(("convnet", lr), 0.0) for lr in rates}
    bn = {lr: acc.get(("convnet_bn", lr), 0.0) for lr in rates}
    bn_only = [lr for lr in rates if plain[lr] <= 2 * CHANCE and bn[lr] >= TRAINED]
    best_plain, best_bn = max(plain.values()), max(bn.values())
    best = f"best over the grid {pts(best_bn)} % with BatchNorm, {pts(best_plain)} % without"
    home = max(rates, key=lambda r: plain[r])  # the plain network's best rate
    fast, slow = epochs.get(("convnet_bn", home), math.inf), epochs.get(("convnet", home), math.inf)
    premise = "" if best_bn >= TRAINED else (
        f"the BatchNorm ConvNet did not train at any rate (best {pts(best_bn)} %)")  # fmt: skip
    verdict = judge(
        [(bool(bn_only), f"at lr {', '.join(f'{r:g}' for r in bn_only)} the plain ConvNet "
                         f"diverges to chance while the BatchNorm one trains ("
                         f"{', '.join(f'{pts(bn[r])} % vs {pts(plain[r])} %' for r in bn_only)})"
          if bn_only else "no learning rate sends only the plain network to chance"),
         part(fast < slow, "BatchNorm accelerates training", "BatchNorm does not accelerate "
               "training", f"at lr {home:g}, the plain network's best, {level:.0%} validation "
               f"accuracy is reached {_reach(fast)} with BatchNorm and {_reach(slow)} without")],
        premise,
    ) + f"; {best}"  # fmt: skip
    header = ["model", "lr", "test acc %", f"epochs to {level:.0%} val acc (median)"]
    plot = {"kind": "lines", "xlabel": "learning rate (SGD, constant)", "ylabel": "test accuracy %",
            "x": rates, "logx": True,
            "series": {"convnet": [plain[r] * 100 for r in rates],
                       "convnet_bn": [bn[r] * 100 for r in rates]},
            "errors": {m: [sd.get((m, r), 0.0) * 100 for r in rates]
                       for m in ("convnet", "convnet_bn")}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def _epochs_text(epochs: float) -> str:
    return "never" if math.isinf(epochs) else f"{epochs:g}"


def _reach(epochs: float) -> str:
    return "never" if math.isinf(epochs) else f"after {epochs:g} epochs"


def residual(jobs: list[Job]) -> Finding:
    """Three parts, on final training loss (the sentence is about training): plain-56 trains
    worse than plain-20, residual-56 no worse than residual-20, and residual-56 better than
    plain-56, each beyond the margin; premise: all four networks trained."""
    groups = by(jobs, "model.net.residual", "model.net.depth")
    rows, loss, acc, curves, members_of = [], {}, {}, {}, {}
    for (res, depth), members in groups.items():
        name = f"{'residual' if str(res).lower() == 'true' else 'plain'}-{depth}"
        members_of[name] = members
        loss[name], acc[name] = mean(members, "train/loss"), mean(members, "test/acc")
        rows.append([name, f"{int(members[0].get('params')):,}",
                     mean_std(members, "train/loss", digits=3),
                     mean_std(members, "test/acc", 100)])  # fmt: skip
        per_job = [[v for _, v in j.curves.get("train/loss", [])] for j in members]
        length = min(map(len, per_job), default=0)
        curves[name] = [sum(c[i] for c in per_job) / len(per_job) for i in range(length)]
    need = ("plain-20", "plain-56", "residual-20", "residual-56")
    if not all(n in acc for n in need):
        missing = ", ".join(n for n in need if n not in acc)
        return Finding(table(["network"], rows), f"no verdict: {missing} did not finish", {})

    def worse(deep: str, shallow: str) -> tuple[float, float]:  # loss gap and its margin
        margin = spread(members_of[deep], members_of[shallow], metric="train/loss")
        return loss[deep] - loss[shallow], margin

    plain_gap, plain_noise = worse("plain-56", "plain-20")
    res_gap, res_noise = worse("residual-56", "residual-20")
    fix_gap, fix_noise = worse("plain-56", "residual-56")
    tested = f"test {pts(acc['residual-56'])} % vs "
    verdict = judge(
        [part(plain_gap > plain_noise, "plain-56 trains worse than plain-20",
               "plain-56 does not train worse than plain-20",
               f"final training loss {loss['plain-56']:.3f} vs {loss['plain-20']:.3f}, "
               f"margin {plain_noise:.3f}"),
         part(res_gap <= res_noise, "residual-56 trains no worse than residual-20",
               "residual-56 trains worse than residual-20",
               f"loss {loss['residual-56']:.3f} vs {loss['residual-20']:.3f}, margin "
               f"{res_noise:.3f}; {tested}{pts(acc['residual-20'])} %"),
         part(fix_gap > fix_noise, "residual-56 trains better than plain-56",
               "residual-56 does not train better than plain-56",
               f"loss {loss['residual-56']:.3f} vs {loss['plain-56']:.3f}; {tested}"
               f"{pts(acc['plain-56'])} %")],
        untrained({n: members_of[n] for n in need}),
    )  # fmt: skip
    header = ["network", "parameters", "final training loss", "test acc %"]
    plot = {"kind": "curves", "xlabel": "epoch", "ylabel": "training loss", "series": curves}
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
    small, large = gains[least], gains[most]
    few = groups_at[least]
    noise = spread(*few)
    trend_noise = max(noise, spread(*groups_at[most]))
    verdict = judge(
        [part(small > noise, "augmentation helps with little data",
               "augmentation does not help with little data",
               f"{signed(small)} points with {least:,} training images, margin {pts(noise)}"),
         part(small - large > trend_noise, "more so with less data", "not more so with less data",
               f"{signed(small)} points with {least:,} images, {signed(large)} with {most:,}, "
               f"margin {pts(trend_noise)}")],
        untrained({f"{k} with {size:,} images": m for size, pair in groups_at.items()
                    for k, m in zip(("augment=none", "augment=mnist"), pair, strict=True)}),
    )  # fmt: skip
    header = ["training images", "augment=none, test acc %", "augment=mnist, test acc %",
              "gain, points"]  # fmt: skip
    plot = {"kind": "lines", "xlabel": "training images", "x": sorted(gains), "logx": True,
            "ylabel": "gain from augmentation, points",
            "series": {"mnist − none": [gains[k] * 100 for k in sorted(gains)]}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


# The least pointing-game gap that counts as "shows the shortcut", in fraction of images: with
# one seed there is no spread to compare against, and untrained networks differ by chance.
POINTING_MARGIN = 0.10


# The shortcut was learned when the shortcut network's accuracy on its marked training digits
# exceeds its accuracy on the randomly marked test digits by this much (fraction).
SHORTCUT_GAP = 0.20


def _no_shortcut(shortcut: list[Job]) -> str:
    """The premise of the shortcut study: '' when the shortcut network learned the mark."""
    marked, unmarked = mean(shortcut, "train/acc"), mean(shortcut, "test/acc")
    if math.isnan(marked):
        return "the shortcut network's training accuracy was not recorded"
    if marked >= TRAINED and marked - unmarked >= SHORTCUT_GAP:
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
    drop = point[0.0] - point[1.0]
    shortcut, honest = groups[(_key(groups, 1.0),)], groups[(_key(groups, 0.0),)]
    margin = max(POINTING_MARGIN, spread(shortcut, honest, metric="val/pointing_game"))
    verdict = judge(
        [part(drop > margin, "Grad-CAM shows the shortcut: the shortcut network's maps point "
               "inside the digit less often", "Grad-CAM does not show the shortcut",
               f"pointing game {pts(point[1.0])} % with the shortcut vs {pts(point[0.0])} % "
               f"without; margin {pts(margin)} points")],
        untrained({"the network without a shortcut": honest}) or _no_shortcut(shortcut),
    )  # fmt: skip
    header = ["correlation", "training data", "pointing game %", "test acc %"]
    plot = {"kind": "bars", "ylabel": "%", "groups": ["pointing game", "test accuracy"],
            "series": {("shortcut" if k else "no shortcut"): [point[k] * 100, acc[k] * 100]
                       for k in sorted(point)},
            "errors": {("shortcut" if float(k) else "no shortcut"):
                       [std(g, "val/pointing_game") * 100, std(g, "test/acc") * 100]
                       for (k,), g in groups.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


PREMISE = (f"Every network compared must have trained (mean test accuracy ≥ {TRAINED:.0%}); a "
           f"difference counts only beyond its margin: the larger seed-to-seed standard deviation "
           f"of the two groups, and at least {MIN_MARGIN * 100:g} points (or {MIN_MARGIN:g} in "
           f"loss).")  # fmt: skip
CLAIMS = (
    Claim("connectivity", "Local connectivity and weight sharing: a ConvNet beats a dense network "
          "on images and is less thrown off when the object moves.", connectivity,
          "ConvNet − MLP test accuracy, and the accuracy each loses on digits shifted by 3 "
          "pixels. " + PREMISE),
    Claim("batchnorm", "BatchNorm stabilizes and accelerates training and allows higher learning "
          "rates.", batchnorm,
          "Higher rates: some rate leaves the plain ConvNet at chance (≤ 20 %) while the "
          "BatchNorm one trains. Acceleration: at the plain network's best rate, epochs to 97 % "
          "validation accuracy (median over seeds). The BatchNorm network must have trained."),
    Claim("residual", "Residual connections unlocked very deep networks: a deeper plain network "
          "trains worse than a shallower one; the residual one does not.", residual,
          "Final training loss: plain-56 above plain-20, residual-56 not above residual-20, "
          "residual-56 below plain-56. " + PREMISE),
    Claim("augmentation", "Augmentation is the cheapest regularizer you'll ever deploy, more so "
          "with less data.", augmentation,
          "augment=mnist − augment=none test accuracy at the smallest training set, and that gain "
          "against the gain at the largest. " + PREMISE),
    Claim("transfer", "You almost never train from scratch: pretrained features transfer.",
          transfer, "Each pretrained strategy's test accuracy (its learning rate chosen on "
          "validation) against training from scratch. " + PREMISE),
    Claim("probe_finetune", "Linear probe: freeze the backbone, train only the head (fast, small "
          "data). Fine-tune: train everything with a small learning rate (best results, more "
          "data).", probe_finetune,
          "The transfer sweep's 200 training images and this sweep's 2,000: fine-tune − linear "
          "probe test accuracy at each size, each strategy's rate chosen on validation; the lead "
          "at the largest size and its growth from the smallest. " + PREMISE,
          sweeps=("transfer", "probe_finetune")),
    Claim("pooling", "Pooling: spatial dimension reduction, local invariance, no parameters.",
          pooling, "The lecture's ConvNet with 2×2 max pooling against the same network whose "
          "convolutions step by 2 pixels instead (same output size and parameters, no pooling): "
          "test accuracy each loses on test digits shifted by 1 and by 2 pixels. " + PREMISE),
    Claim("sharing", "Parameter sharing: reduce overfitting.", sharing,
          "An MLP widened to the ConvNet's parameter count (hidden 1,038: 825,220 against "
          "824,970) and the ConvNet, 500 training digits, no augmentation: overfitting gap = "
          "training accuracy (last epoch) − test accuracy; the margin is the larger seed spread "
          "of either accuracy. " + PREMISE),
    Claim("normalization", "BatchNorm acts as a mild regularizer; its statistics depend on the "
          "batch size: for tiny batches switch to GroupNorm/LayerNorm.", normalization,
          "The lecture's ConvNet with BatchNorm, GroupNorm (8 groups), LayerNorm (one group) or "
          "no normalization, at batches of 2 and 16 (the same 3 epochs): the overfitting gap at "
          "16 with and without BatchNorm, and the test accuracy each normalization loses from 16 "
          "to 2. Premise: every network trained at batch 16, and the alternatives at batch 2 "
          f"(test accuracy ≥ {TRAINED:.0%}); margins as above."),
    Claim("imagenet", "ResNet-50 compared to VGG: superior accuracy (5.25 % top-5 error vs "
          "7.1 %), fewer parameters (25 M vs 138 M), less computation (3.8 B FLOPs vs 15.3 B).",
          imagenet, "No training: torchvision's published top-5 error of its IMAGENET1K_V1 "
          "weights, and parameters and multiply-adds counted by cnnlab (`make summary`) at "
          "224×224, beside the lecture's.", sweeps=()),
    Claim("gradcam", "Grad-CAM shows what the model attends to, e.g. a shortcut.", gradcam,
          "Pointing game (Grad-CAM's maximum inside the digit) without the shortcut minus with "
          f"it, beyond {POINTING_MARGIN:.0%} or the seed spread. Premise: the shortcut was "
          f"learned (training accuracy on marked digits ≥ {TRAINED:.0%} and ≥ "
          f"{SHORTCUT_GAP * 100:g} points above test accuracy on randomly marked ones), and the "
          f"network without it trained (test accuracy ≥ {TRAINED:.0%})."),
)  # fmt: skip
# The report's order: the lecture's.
ORDER = ("connectivity", "sharing", "pooling", "batchnorm", "normalization", "residual", "imagenet",
         "augmentation", "transfer", "probe_finetune", "gradcam")  # fmt: skip
BY_NAME = {name: next(c for c in CLAIMS if c.name == name) for name in ORDER}

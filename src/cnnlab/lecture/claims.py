"""Each lecture claim: its sentence, the sweep that tests it, and the verdict computed from the
sweep's own numbers. A verdict either says "holds" with the figures that make it hold, or "does
not hold at this budget" with the figure that fails it; nothing here is fixed in advance."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.lecture.results import Job, by, mean, mean_std, table


@dataclass
class Finding:
    table: str  # Markdown
    verdict: str  # one line: "holds: …" or "does not hold at this budget: …"
    plot: dict  # what figures.py draws (kind + series)


@dataclass(frozen=True)
class Claim:
    name: str
    sentence: str  # the lecture's words
    judge: Callable[[list[Job]], Finding]


def _pts(x: float) -> str:
    return f"{round(x * 100, 1) + 0.0:.1f}"  # + 0.0: no "-0.0"


def _verdict(ok: bool, because: str, otherwise: str) -> str:
    return f"holds: {because}" if ok else f"does not hold at this budget: {otherwise}"


def connectivity(jobs: list[Job]) -> Finding:
    groups = by(jobs, "model")
    rows, summary = [], {}
    for (model,), members in groups.items():
        acc, shifted = mean(members, "test/acc"), mean(members, "test/acc_shifted")
        summary[model] = (acc, shifted, acc - shifted)
        rows.append([model, f"{int(members[0].get('params')):,}", len(members),
                     mean_std(members, "test/acc", 100), mean_std(members, "test/acc_shifted", 100),
                     _pts(acc - shifted)])  # fmt: skip
    mlp, conv = summary.get("mlp"), summary.get("convnet")
    if mlp is None or conv is None:
        return Finding(table(["model"], []), "no verdict: a model's jobs did not finish", {})
    ok = conv[0] > mlp[0] and conv[2] < mlp[2]
    verdict = _verdict(
        ok,
        f"the ConvNet beats the MLP by {_pts(conv[0] - mlp[0])} points and loses "
        f"{_pts(conv[2])} points on shifted digits against the MLP's {_pts(mlp[2])}",
        f"ConvNet − MLP = {_pts(conv[0] - mlp[0])} points; shift costs the ConvNet "
        f"{_pts(conv[2])} and the MLP {_pts(mlp[2])} points",
    )
    header = ["model", "parameters", "seeds", "test acc %", "shifted test acc %", "drop, points"]
    plot = {"kind": "bars", "ylabel": "test accuracy %", "groups": ["test", "shifted"],
            "series": {m: [v[0] * 100, v[1] * 100] for m, v in summary.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def _epochs_to(job: Job, level: float) -> float:
    """First epoch (1-based) whose val/acc reached `level`, inf if none did."""
    for epoch, (_, value) in enumerate(job.curves.get("val/acc", []), start=1):
        if value >= level:
            return epoch
    return math.inf


def batchnorm(jobs: list[Job], level: float = 0.97) -> Finding:
    """Holds when some rate sends the plain ConvNet to chance (diverged) while the BatchNorm one
    still learns (at least 5× chance); the best accuracy over the grid is reported beside it."""
    groups = by(jobs, "model", "optimizer.lr")
    rows, acc = [], {}
    for (model, lr), members in groups.items():
        acc[model, float(lr)] = mean(members, "test/acc")
        epochs = sorted(_epochs_to(j, level) for j in members)[len(members) // 2]  # median
        rows.append([model, lr, mean_std(members, "test/acc", 100),
                     "never" if math.isinf(epochs) else epochs])  # fmt: skip
    rates = sorted({lr for _, lr in acc})
    plain = {lr: acc.get(("convnet", lr), 0.0) for lr in rates}
    bn = {lr: acc.get(("convnet_bn", lr), 0.0) for lr in rates}
    chance = 1 / 10  # ten digits
    bn_only = [lr for lr in rates if plain[lr] <= 2 * chance and bn[lr] >= 5 * chance]
    best_plain, best_bn = max(plain.values()), max(bn.values())
    best = f"best over the grid {_pts(best_bn)} % with BatchNorm, {_pts(best_plain)} % without"
    verdict = _verdict(
        bool(bn_only),
        f"at lr {', '.join(f'{r:g}' for r in bn_only)} the plain ConvNet diverges to chance "
        f"while the BatchNorm one still learns "
        f"({', '.join(f'{_pts(bn[r])} % vs {_pts(plain[r])} %' for r in bn_only)}); {best}",
        f"no learning rate sends only the plain network to chance; {best}",
    )
    header = ["model", "lr", "test acc %", f"epochs to {level:.0%} val acc (median)"]
    plot = {"kind": "lines", "xlabel": "learning rate (SGD, constant)", "ylabel": "test accuracy %",
            "x": rates, "logx": True,
            "series": {"convnet": [plain[r] * 100 for r in rates],
                       "convnet_bn": [bn[r] * 100 for r in rates]}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def residual(jobs: list[Job]) -> Finding:
    groups = by(jobs, "model.net.residual", "model.net.depth")
    rows, loss, acc, curves = [], {}, {}, {}
    for (res, depth), members in groups.items():
        name = f"{'residual' if str(res).lower() == 'true' else 'plain'}-{depth}"
        loss[name], acc[name] = mean(members, "train/loss"), mean(members, "test/acc")
        rows.append([name, f"{int(members[0].get('params')):,}",
                     mean_std(members, "train/loss", digits=3),
                     mean_std(members, "test/acc", 100)])  # fmt: skip
        per_job = [[v for _, v in j.curves.get("train/loss", [])] for j in members]
        length = min(map(len, per_job), default=0)
        curves[name] = [sum(c[i] for c in per_job) / len(per_job) for i in range(length)]
    need = ("plain-20", "plain-56", "residual-56")
    if not all(n in acc for n in need):
        return Finding(table(["network"], []), "no verdict: a network's jobs did not finish", {})
    gain, degradation = acc["residual-56"] - acc["plain-56"], acc["plain-20"] - acc["plain-56"]
    ok = gain > 0 and degradation > 0 and loss["plain-56"] > loss["plain-20"]
    verdict = _verdict(
        ok,
        f"residual-56 beats plain-56 by {_pts(gain)} points, plain-56 is {_pts(degradation)} "
        f"points below plain-20 (final training loss {loss['plain-56']:.3f} vs "
        f"{loss['plain-20']:.3f}: deeper trains worse, the degradation problem)"
        + _residual_depth(acc, loss),
        f"residual-56 − plain-56 = {_pts(gain)} points, plain-20 − plain-56 = "
        f"{_pts(degradation)} points, training loss plain-56 {loss['plain-56']:.3f} vs "
        f"plain-20 {loss['plain-20']:.3f} (more epochs may be needed for 56 layers)",
    )
    header = ["network", "parameters", "final training loss", "test acc %"]
    plot = {"kind": "curves", "xlabel": "epoch", "ylabel": "training loss", "series": curves}
    return Finding(table(header, rows), verdict, plot)


def _residual_depth(acc: dict, loss: dict) -> str:
    """What depth costs the residual networks at this budget, said either way."""
    if "residual-20" not in acc:
        return ""
    gap = acc["residual-20"] - acc["residual-56"]
    return (
        f"; residual-56 is {_pts(abs(gap))} points {'below' if gap > 0 else 'above'} "
        f"residual-20 (training loss {loss['residual-56']:.3f} vs {loss['residual-20']:.3f})"
    )


def augmentation(jobs: list[Job]) -> Finding:
    groups = by(jobs, "data.train_limit", "augment")
    sizes = list(dict.fromkeys(size for size, _ in groups))
    rows, gains = [], {}
    for size in sizes:
        none, aug = groups.get((size, "none"), []), groups.get((size, "mnist"), [])
        if not none or not aug:
            continue
        images = int(none[0].get("train_images", 0)) or size
        gains[images] = mean(aug, "test/acc") - mean(none, "test/acc")
        rows.append([f"{images:,}", mean_std(none, "test/acc", 100), mean_std(aug, "test/acc", 100),
                     _pts(gains[images])])  # fmt: skip
    if len(gains) < 2:
        return Finding(table(["training images"], rows), "no verdict: too few sizes finished", {})
    small, large = gains[min(gains)], gains[max(gains)]
    ok = small > 0 and small > large
    verdict = _verdict(
        ok,
        f"augmentation adds {_pts(small)} points with {min(gains):,} training images and "
        f"{_pts(large)} with {max(gains):,}",
        f"augmentation adds {_pts(small)} points with {min(gains):,} images and {_pts(large)} "
        f"with {max(gains):,}",
    )
    header = ["training images", "augment=none, test acc %", "augment=mnist, test acc %",
              "gain, points"]  # fmt: skip
    plot = {"kind": "lines", "xlabel": "training images", "x": sorted(gains), "logx": True,
            "ylabel": "gain from augmentation, points",
            "series": {"mnist − none": [gains[k] * 100 for k in sorted(gains)]}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def transfer(jobs: list[Job]) -> Finding:
    groups = by(jobs, "transfer", "optimizer.lr")
    best: dict[str, tuple[str, list[Job]]] = {}
    for (strategy, lr), members in groups.items():  # the learning rate chosen by validation
        chosen = best.get(strategy)
        if chosen is None or mean(members, "val/acc_best") > mean(chosen[1], "val/acc_best"):
            best[strategy] = (lr, members)
    rows = [[s, lr, mean_std(m, "val/acc_best", 100), mean_std(m, "test/acc", 100)]
            for s, (lr, m) in best.items()]  # fmt: skip
    if "scratch" not in best or len(best) < 2:
        return Finding(table(["strategy"], rows), "no verdict: too few strategies finished", {})
    scratch = mean(best["scratch"][1], "test/acc")
    margins = {s: mean(m, "test/acc") - scratch for s, (_, m) in best.items() if s != "scratch"}
    ok = all(v > 0 for v in margins.values())
    spread = f"{_pts(min(margins.values()))}–{_pts(max(margins.values()))} points"
    verdict = _verdict(
        ok,
        f"every pretrained start beats training from scratch, by {spread}",
        "; ".join(f"{s} − scratch = {_pts(v)} points" for s, v in margins.items()),
    )
    header = ["strategy", "lr (best by val)", "val acc %", "test acc %"]
    plot = {"kind": "bars", "ylabel": "test accuracy %", "groups": ["test"],
            "series": {s: [mean(m, "test/acc") * 100] for s, (_, m) in best.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


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
    ok = drop > 0
    verdict = _verdict(
        ok,
        f"Grad-CAM of the shortcut network points inside the digit {_pts(point[1.0])} % of the "
        f"time against {_pts(point[0.0])} % without the shortcut: it shows the network looks at "
        f"the mark (and its test accuracy is {_pts(acc[1.0])} % vs {_pts(acc[0.0])} %)",
        f"pointing game {_pts(point[1.0])} % with the shortcut vs {_pts(point[0.0])} % without",
    )
    header = ["correlation", "training data", "pointing game %", "test acc %"]
    plot = {"kind": "bars", "ylabel": "%", "groups": ["pointing game", "test accuracy"],
            "series": {("shortcut" if k else "no shortcut"): [point[k] * 100, acc[k] * 100]
                       for k in sorted(point)}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


CLAIMS = (
    Claim("connectivity", "Local connectivity and weight sharing: a ConvNet beats a dense network "
          "on images and is less thrown off when the object moves.", connectivity),
    Claim("batchnorm", "BatchNorm stabilizes and accelerates training and allows higher learning "
          "rates.", batchnorm),
    Claim("residual", "Residual connections unlocked very deep networks: a deeper plain network "
          "trains worse than a shallower one; the residual one does not.", residual),
    Claim("augmentation", "Augmentation is the cheapest regularizer you'll ever deploy, more so "
          "with less data.", augmentation),
    Claim("transfer", "You almost never train from scratch: pretrained features transfer.",
          transfer),
    Claim("gradcam", "Grad-CAM shows what the model attends to, e.g. a shortcut.", gradcam),
)  # fmt: skip
BY_NAME = {c.name: c for c in CLAIMS}

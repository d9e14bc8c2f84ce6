"""The lecture's claims about training itself, each judged from its sweep: BatchNorm stabilizes
and accelerates training (a divergence above a rate that trains; the first epoch's accuracy),
and residual connections let a deeper network train as well as a shallower one."""

from __future__ import annotations

import math
import statistics

from cnnlab.core.metric_names import NONFINITE_SKIPPED
from cnnlab.lecture.results import Job, by, mean, mean_std, std, table
from cnnlab.lecture.stats import between
from cnnlab.lecture.verdicts import (
    MIN_LOSS,
    TRAINED_SHARE,
    Finding,
    Part,
    few_seeds,
    judge,
    level,
    no_worse,
    pts,
    test,
    unjudged,
    untrained,
    values,
)

# A loss above this many times a uniform guess's (ln k) is a blow-up; a final loss this many
# times the first logged one is a rising loss.
BLOWUP = 2.0
RISE = 1.1


def diverged(job: Job) -> bool:
    """The run diverged: a non-finite loss or gradient (a skipped step), a loss that blew up
    (above BLOWUP × ln k at a logged step or in an epoch's mean), or a loss that rose (the last
    epoch's mean above RISE × the first logged step's). Low accuracy alone is not divergence, nor
    a loss still near its start (a rate too small to have moved the weights yet)."""
    uniform = math.log(int(job.get("num_classes")))
    steps = [v for _, v in job.curves.get("train/loss_step", [])]
    epochs = [v for _, v in job.curves.get("train/loss", [])]
    final = [float(job.get("train/loss"))] if job.get("train/loss") is not None else []
    seen = steps + epochs + final
    if int(job.get(NONFINITE_SKIPPED) or 0) or not all(map(math.isfinite, seen)):
        return True
    rose = bool(steps and final) and final[0] > RISE * steps[0]
    return max(seen, default=0.0) > BLOWUP * uniform or rose


def _first_val(job: Job) -> float:
    """Validation accuracy after the first epoch: how fast the network starts learning."""
    curve = job.curves.get("val/acc", [])
    return curve[0][1] if curve else math.nan


def batchnorm(jobs: list[Job]) -> Finding:
    """Two parts. Stabilizes: at a rate that makes the plain ConvNet diverge, above one where it
    trains, the BatchNorm ConvNet trains and scores higher. Accelerates: at the plain network's
    own best rate, the BatchNorm one's validation accuracy after the first epoch is higher."""
    groups = by(jobs, "model", "optimizer.lr")
    rows, acc, out_of = [], {}, {}
    for (model, lr), members in groups.items():
        acc[model, float(lr)] = mean(members, "test/acc")
        out_of[model, float(lr)] = sum(map(diverged, members))
        rows.append([model, lr, mean_std(members, "test/acc", 100),
                     f"{statistics.fmean(values(members, _first_val)) * 100:.1f}",
                     f"{out_of[model, float(lr)]} of {len(members)}"])  # fmt: skip
    header = ["model", "lr", "test acc %", "val acc after epoch 1 %", "seeds diverged"]
    rates = sorted({lr for _, lr in acc})
    if not all(("convnet", r) in acc and ("convnet_bn", r) in acc for r in rates):
        return Finding(table(header, rows), "no verdict: a model's jobs did not finish", {})
    at = {(m, r): groups[(m, k)] for (m, k) in groups for r in [float(k)]}
    plain = {r: at["convnet", r] for r in rates}
    bn = {r: at["convnet_bn", r] for r in rates}
    trains = [r for r in rates if acc["convnet", r] >= level(plain[r], TRAINED_SHARE)]
    # Diverged in most seeds, above a rate where the plain network trains.
    unstable = [r for r in rates if 2 * out_of["convnet", r] > len(plain[r])
                and any(t < r for t in trains)]  # fmt: skip
    if unstable:
        r = unstable[0]
        below = max(t for t in trains if t < r)
        stable = test(
            between(values(bn[r], "test/acc"), values(plain[r], "test/acc")),
            f"at lr {r:g}, where the plain ConvNet diverges ({out_of['convnet', r]} of "
            f"{len(plain[r])} seeds) but trains at lr {below:g}, the BatchNorm one "
            f"trains",
            f"at lr {r:g}, where the plain ConvNet diverges, the BatchNorm "
            f"one does not train better",
            what=f"{pts(acc['convnet_bn', r])} % vs {pts(acc['convnet', r])} %: ",
        )
        if acc["convnet_bn", r] < level(bn[r], TRAINED_SHARE):
            stable = Part(
                False,
                f"at lr {r:g} the BatchNorm ConvNet diverges too ({pts(acc['convnet_bn', r])} %)",
            )
    else:
        counts = ", ".join(f"{r:g}: {out_of['convnet', r]}" for r in rates)
        stable = unjudged(
            "stabilizes: no rate in the grid makes the plain ConvNet diverge (a non-finite, blown-"
            "up or rising loss, in most seeds) above a rate where it trains "
            f"(seeds diverged at lr {counts}; trains at lr "
            f"{', '.join(f'{r:g}' for r in trains) or 'none'})"
        )
    home = max(rates, key=lambda r: acc["convnet", r])  # the plain network's best rate
    fast = test(
        between(values(bn[home], _first_val), values(plain[home], _first_val)),
        "BatchNorm accelerates training",
        "BatchNorm does not accelerate training",
        what=f"at lr {home:g}, the plain network's best, validation accuracy after the "
        f"first epoch: ",
    )
    named = {f"{m}, lr {k}": g for (m, k), g in groups.items()}
    premise = few_seeds(named) or ("" if any(
        acc["convnet_bn", r] >= level(bn[r], TRAINED_SHARE) for r in rates)
        else "the BatchNorm ConvNet did not train at any rate")  # fmt: skip
    best = (f"best over the grid {pts(max(acc['convnet_bn', r] for r in rates))} % with BatchNorm, "
            f"{pts(max(acc['convnet', r] for r in rates))} % without")  # fmt: skip
    verdict = judge([stable, fast], premise) + f"; {best}"
    plot = {"kind": "lines", "xlabel": "learning rate (SGD, constant)", "ylabel": "test accuracy %",
            "x": rates, "logx": True,
            "series": {m: [acc[m, r] * 100 for r in rates] for m in ("convnet", "convnet_bn")},
            "errors": {m: [std(at[m, r], "test/acc") * 100 for r in rates]
                       for m in ("convnet", "convnet_bn")}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def residual(jobs: list[Job]) -> Finding:
    """Three parts, on final training loss (the sentence is about training), between the sweep's
    shallowest and deepest networks (20 and 56 layers in `make lecture`): the deep plain one
    trains worse than the shallow plain one, the deep residual one no worse than the shallow
    residual one, and better than the deep plain one; premise: all four networks trained."""
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
    depths = sorted({int(depth) for _, depth in groups}) or [20, 56]
    shallow, deep = depths[0], depths[-1]
    p_s, p_d, r_s, r_d = (f"{kind}-{d}" for kind in ("plain", "residual") for d in (shallow, deep))
    need = (p_s, p_d, r_s, r_d)
    if len(depths) < 2 or not all(n in acc for n in need):
        missing = ", ".join(n for n in need if n not in acc) or "a second depth"
        return Finding(table(["network"], rows), f"no verdict: {missing} did not finish", {})

    def worse(deep: str, shallow: str):  # deep's final training loss − shallow's, per seed
        return between(values(members_of[deep], "train/loss"),
                       values(members_of[shallow], "train/loss"))  # fmt: skip

    def losses(a: str, b: str) -> str:
        return f"final training loss {loss[a]:.3f} vs {loss[b]:.3f}: "

    loss_form = {"minimum": MIN_LOSS, "scale": 1.0, "unit": "", "digits": 3}
    named = {n: members_of[n] for n in need}
    verdict = judge(
        [test(worse(p_d, p_s), f"{p_d} trains worse than {p_s}",
              f"{p_d} does not train worse than {p_s}", what=losses(p_d, p_s), **loss_form),
         no_worse(worse(r_d, r_s), f"{r_d} trains no worse than {r_s}",
                  f"{r_d} may train worse than {r_s}", what=losses(r_d, r_s), **loss_form),
         test(worse(p_d, r_d), f"{r_d} trains better than {p_d}",
              f"{r_d} does not train better than {p_d}", what=losses(r_d, p_d), **loss_form)],
        few_seeds(named) or untrained(named),
    )  # fmt: skip
    header = ["network", "parameters", "final training loss", "test acc %"]
    plot = {"kind": "curves", "xlabel": "epoch", "ylabel": "training loss", "series": curves}
    return Finding(table(header, rows), verdict, plot)

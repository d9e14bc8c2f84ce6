"""The lecture's claims about layers, each a small sweep of the lecture's ConvNet: pooling's local
invariance, parameter sharing against overfitting, and BatchNorm as a regularizer whose
statistics depend on the batch size (GroupNorm and LayerNorm do not)."""

from __future__ import annotations

from collections.abc import Callable

from cnnlab.core import choices
from cnnlab.lecture.results import Job, by, mean, mean_std, std, table
from cnnlab.lecture.stats import above_zero, between, contrast
from cnnlab.lecture.verdicts import (
    Finding,
    few_seeds,
    judge,
    overfitting,
    pts,
    signed,
    test,
    unfit,
    unjudged,
    untrained,
    values,
)

SHIFTS_PX = (1, 2)  # the pooling claim's "local" shifts: one 2×2 window or less


def shift_metric(pixels: int) -> str:
    return f"test/acc_shift{pixels}"


def pooling(jobs: list[Job]) -> Finding:
    groups = by(jobs, "model.net.pool")
    rows, drop = [], {}
    for (pool,), members in groups.items():
        acc = mean(members, "test/acc")
        drop[pool] = {p: acc - mean(members, shift_metric(p)) for p in SHIFTS_PX}
        rows.append([pool, len(members), mean_std(members, "test/acc", 100),
                     *(mean_std(members, shift_metric(p), 100) for p in SHIFTS_PX)])  # fmt: skip
    header = ["reduction", "seeds", "test acc %",
              *(f"shifted {p} px, test acc %" for p in SHIFTS_PX)]  # fmt: skip
    if not {"max", "stride"} <= set(drop):
        return Finding(table(header, rows), "no verdict: a variant did not finish", {})
    pooled, strided = groups[("max",)], groups[("stride",)]
    parts = []
    for p in SHIFTS_PX:
        lost = lost_on(shift_metric(p))
        parts.append(test(between(values(strided, lost), values(pooled, lost)),
                          f"a {p}-pixel shift costs the pooled network less",
                          f"a {p}-pixel shift does not cost the pooled network less",
                          what=f"{pts(drop['max'][p])} vs {pts(drop['stride'][p])} points lost; "
                               f"difference "))  # fmt: skip
    named = {"the pooled ConvNet": pooled, "the strided one": strided}
    verdict = judge(parts, few_seeds(named) or untrained(named))
    names = {"max": "max pooling", "stride": "stride 2, no pooling", "avg": "average pooling"}
    plot = {"kind": "bars", "ylabel": "test accuracy %",
            "groups": ["test", *(f"shifted {p} px" for p in SHIFTS_PX)],
            "series": {names[k]: [mean(g, "test/acc") * 100,
                                  *(mean(g, shift_metric(p)) * 100 for p in SHIFTS_PX)]
                       for (k,), g in groups.items()},
            "errors": {names[k]: [std(g, "test/acc") * 100,
                                  *(std(g, shift_metric(p)) * 100 for p in SHIFTS_PX)]
                       for (k,), g in groups.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def lost_on(metric: str) -> Callable[[Job], float]:
    """What one job loses on shifted digits: test accuracy minus `metric`."""
    return lambda job: float(job.get("test/acc")) - float(job.get(metric))


def job_gap(job: Job) -> float:
    """Overfitting of one run: training accuracy (the last epoch's) minus test accuracy."""
    return float(job.get("train/acc")) - float(job.get("test/acc"))


def gap(members: list[Job]) -> float:
    return mean(members, "train/acc") - mean(members, "test/acc")


def overfits_less(reference: tuple[str, list[Job]], other: tuple[str, list[Job]], yes: str,
                  no: str, where: str = ""):  # fmt: skip
    """The regularizing part: `other`'s gap is below `reference`'s. Not judged unless the
    reference overfits (its gap significantly above zero) and both fit their training digits."""
    (ref_name, ref), (name, members) = reference, other
    premise = overfitting(ref_name, ref, above_zero(values(ref, job_gap))) or unfit(
        {ref_name: ref, name: members}
    )
    if premise:
        return unjudged(f"{yes}: {premise}")
    return test(
        between(values(ref, job_gap), values(members, job_gap)),
        yes,
        no,
        what=f"{where}gap {pts(gap(members))} vs {pts(gap(ref))} points; difference ",
    )


def sharing(jobs: list[Job]) -> Finding:
    groups = by(jobs, "model")
    rows = [[model, f"{int(m[0].get('params')):,}", mean_std(m, "train/acc", 100),
             mean_std(m, "test/acc", 100), pts(gap(m))]
            for (model,), m in groups.items()]  # fmt: skip
    header = ["model", "parameters", "train acc %", "test acc %", "gap, points"]
    if ("mlp_matched",) not in groups or ("convnet",) not in groups:
        return Finding(table(header, rows), "no verdict: a model's jobs did not finish", {})
    dense, conv = groups[("mlp_matched",)], groups[("convnet",)]
    ratio = int(dense[0].get("params")) / int(conv[0].get("params"))
    named = {"the MLP": dense, "the ConvNet": conv}
    verdict = judge(
        [overfits_less(("the MLP", dense), ("the ConvNet", conv),
                       "with the same number of parameters the ConvNet overfits less",
                       "the ConvNet does not overfit less than the MLP",
                       where=f"parameters ×{ratio:.3f}; ")],
        few_seeds(named) or untrained(named),
    )  # fmt: skip
    plot = {"kind": "bars", "ylabel": "accuracy %", "groups": ["train", "test"],
            "series": {m: [mean(g, "train/acc") * 100, mean(g, "test/acc") * 100]
                       for (m,), g in groups.items()},
            "errors": {m: [std(g, "train/acc") * 100, std(g, "test/acc") * 100]
                       for (m,), g in groups.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def normalization(jobs: list[Job]) -> Finding:
    """Two parts. Regularizer: at the larger batch, BatchNorm's overfitting gap is below the
    plain network's (which must overfit; both must fit their digits). Batch size: from the
    larger batch to the smallest, BatchNorm loses test accuracy, and more than GroupNorm and
    LayerNorm lose."""
    groups = by(jobs, "model.net.norm", "data.batch_size")
    rows, acc = [], {}
    for (norm, batch), members in groups.items():
        acc[norm, int(batch)] = mean(members, "test/acc")
        rows.append([norm, batch, mean_std(members, "train/acc", 100),
                     mean_std(members, "test/acc", 100), pts(gap(members))])  # fmt: skip
    header = ["norm", "batch", "train acc %", "test acc %", "gap, points"]
    batches = sorted({b for _, b in acc})
    norms = [n for n in choices.CONVNET_NORMS
             if all((n, b) in acc for b in batches)]  # fmt: skip
    if len(batches) < 2 or not {"batch", "none"} <= set(norms) or len(norms) < 3:
        return Finding(table(header, rows), "no verdict: a variant did not finish", {})
    tiny, large = batches[0], batches[-1]
    g = {n: (groups[(n, str(tiny))], groups[(n, str(large))]) for n in norms}
    acc_at = {n: (values(g[n][0], "test/acc"), values(g[n][1], "test/acc")) for n in norms}
    lost = {n: acc[n, large] - acc[n, tiny] for n in norms}
    parts = [
        overfits_less(
            (f"the network without normalization at batch {large}", g["none"][1]),
            (f"BatchNorm at batch {large}", g["batch"][1]),
            "BatchNorm regularizes",
            "BatchNorm does not regularize",
            where=f"at batch {large}: ",
        )
    ]
    # A dependence on the batch size is a loss of accuracy at the tiny batch, not a smaller gain.
    bn_tiny, bn_large = acc_at["batch"]
    own = test(
        between(bn_large, bn_tiny),
        f"BatchNorm loses accuracy at batch {tiny}",
        f"BatchNorm loses no accuracy at batch {tiny}",
        what=f"batch {large} → {tiny}: ",
    )
    parts.append(own)
    for other in (n for n in ("group", "layer") if n in norms and own.held):
        other_tiny, other_large = acc_at[other]
        parts.append(
            test(
                contrast((1, bn_large), (-1, bn_tiny), (-1, other_large), (1, other_tiny)),
                f"BatchNorm depends on the batch size more than {other} norm",
                f"BatchNorm does not depend on the batch size more than {other} norm",
                what=f"batch {large} → {tiny} costs BatchNorm {signed(lost['batch'])} points, "
                f"{other} norm {signed(lost[other])}; difference ",
            )
        )
    # Premise: every network trained at the larger batch, and the alternatives at the smallest
    # (BatchNorm failing there is what the sentence predicts, not a failed premise).
    compared = {f"norm={n}, batch {b}": groups[(n, str(b))] for n in norms for b in batches
                if b == large or n in ("group", "layer")}  # fmt: skip
    every = {f"norm={n}, batch {b}": groups[(n, str(b))] for n in norms for b in batches}
    verdict = judge(parts, few_seeds(every) or untrained(compared))
    label = {"batch": "BatchNorm", "group": "GroupNorm", "layer": "LayerNorm", "none": "no norm"}
    plot = {"kind": "bars", "ylabel": "test accuracy %", "groups": [f"batch {b}" for b in batches],
            "series": {label[n]: [acc[n, b] * 100 for b in batches] for n in norms},
            "errors": {label[n]: [std(groups[(n, str(b))], "test/acc") * 100 for b in batches]
                       for n in norms}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)

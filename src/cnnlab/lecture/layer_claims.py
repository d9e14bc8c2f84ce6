"""The lecture's claims about layers, each a small sweep of the lecture's ConvNet: pooling's local
invariance, parameter sharing against overfitting, and BatchNorm as a regularizer whose
statistics depend on the batch size (GroupNorm and LayerNorm do not)."""

from __future__ import annotations

from cnnlab.lecture.results import Job, by, mean, mean_std, std, table
from cnnlab.lecture.verdicts import Finding, judge, part, pts, signed, spread, untrained

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
        gain = drop["stride"][p] - drop["max"][p]
        noise = spread(pooled, strided, metric=shift_metric(p))
        parts.append(part(gain > noise, f"a {p}-pixel shift costs the pooled network less",
                          f"a {p}-pixel shift does not cost the pooled network less",
                          f"{pts(drop['max'][p])} vs {pts(drop['stride'][p])} points lost, "
                          f"margin {pts(noise)}"))  # fmt: skip
    verdict = judge(parts, untrained({"the pooled ConvNet": pooled, "the strided one": strided}))
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


def gap(members: list[Job]) -> float:
    """Overfitting: training accuracy (the last epoch's) minus test accuracy."""
    return mean(members, "train/acc") - mean(members, "test/acc")


def _gap_spread(*groups: list[Job]) -> float:
    return max(spread(*groups, metric="train/acc"), spread(*groups))


def sharing(jobs: list[Job]) -> Finding:
    groups = by(jobs, "model")
    rows = [[model, f"{int(m[0].get('params')):,}", mean_std(m, "train/acc", 100),
             mean_std(m, "test/acc", 100), pts(gap(m))]
            for (model,), m in groups.items()]  # fmt: skip
    header = ["model", "parameters", "train acc %", "test acc %", "gap, points"]
    if ("mlp_matched",) not in groups or ("convnet",) not in groups:
        return Finding(table(header, rows), "no verdict: a model's jobs did not finish", {})
    dense, conv = groups[("mlp_matched",)], groups[("convnet",)]
    less, noise = gap(dense) - gap(conv), _gap_spread(dense, conv)
    ratio = int(dense[0].get("params")) / int(conv[0].get("params"))
    verdict = judge(
        [part(less > noise, "with the same number of parameters the ConvNet overfits less",
               "the ConvNet does not overfit less than the MLP",
               f"gap {pts(gap(conv))} vs {pts(gap(dense))} points, margin {pts(noise)}; "
               f"parameters ×{ratio:.3f}")],
        untrained({"the MLP": dense, "the ConvNet": conv}),
    )  # fmt: skip
    plot = {"kind": "bars", "ylabel": "accuracy %", "groups": ["train", "test"],
            "series": {m: [mean(g, "train/acc") * 100, mean(g, "test/acc") * 100]
                       for (m,), g in groups.items()},
            "errors": {m: [std(g, "train/acc") * 100, std(g, "test/acc") * 100]
                       for (m,), g in groups.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def normalization(jobs: list[Job]) -> Finding:
    """Two parts. Regularizer: at the larger batch, BatchNorm's overfitting gap is below the
    plain network's. Batch size: from the larger batch to the smallest, BatchNorm loses more
    test accuracy than GroupNorm and than LayerNorm."""
    groups = by(jobs, "model.net.norm", "data.batch_size")
    rows, acc = [], {}
    for (norm, batch), members in groups.items():
        acc[norm, int(batch)] = mean(members, "test/acc")
        rows.append([norm, batch, mean_std(members, "train/acc", 100),
                     mean_std(members, "test/acc", 100), pts(gap(members))])  # fmt: skip
    header = ["norm", "batch", "train acc %", "test acc %", "gap, points"]
    batches = sorted({b for _, b in acc})
    norms = [n for n in ("batch", "group", "layer", "none")
             if all((n, b) in acc for b in batches)]  # fmt: skip
    if len(batches) < 2 or not {"batch", "none"} <= set(norms) or len(norms) < 3:
        return Finding(table(header, rows), "no verdict: a variant did not finish", {})
    tiny, large = batches[0], batches[-1]
    g = {n: (groups[(n, str(tiny))], groups[(n, str(large))]) for n in norms}
    lost = {n: acc[n, large] - acc[n, tiny] for n in norms}
    reg, reg_noise = (
        gap(g["none"][1]) - gap(g["batch"][1]),
        _gap_spread(g["none"][1], g["batch"][1]),
    )
    parts = [
        part(
            reg > reg_noise,
            "BatchNorm regularizes",
            "BatchNorm does not regularize",
            f"overfitting gap at batch {large} {pts(gap(g['batch'][1]))} vs "
            f"{pts(gap(g['none'][1]))} points without, margin {pts(reg_noise)}",
        )
    ]
    for other in (n for n in ("group", "layer") if n in norms):
        noise = spread(*g["batch"], *g[other])
        parts.append(
            part(
                lost["batch"] - lost[other] > noise,
                f"BatchNorm depends on the batch size more than {other} norm",
                f"BatchNorm does not depend on the batch size more than {other} norm",
                f"batch {large} → {tiny} costs BatchNorm {signed(lost['batch'])} "
                f"points, {other} norm {signed(lost[other])}, margin {pts(noise)}",
            )
        )
    # Premise: every network trained at the larger batch, and the alternatives at the smallest
    # (BatchNorm failing there is what the sentence predicts, not a failed premise).
    compared = {f"norm={n}, batch {b}": groups[(n, str(b))] for n in norms for b in batches
                if b == large or n in ("group", "layer")}  # fmt: skip
    verdict = judge(parts, untrained(compared))
    label = {"batch": "BatchNorm", "group": "GroupNorm", "layer": "LayerNorm", "none": "no norm"}
    plot = {"kind": "bars", "ylabel": "test accuracy %", "groups": [f"batch {b}" for b in batches],
            "series": {label[n]: [acc[n, b] * 100 for b in batches] for n in norms},
            "errors": {label[n]: [std(groups[(n, str(b))], "test/acc") * 100 for b in batches]
                       for n in norms}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)

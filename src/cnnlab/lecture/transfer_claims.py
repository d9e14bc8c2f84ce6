"""The lecture's transfer-learning claims, judged from the digits transfer sweeps (pretrained on
0–4, then 5–9): pretrained features beat training from scratch, and fine-tuning beats a linear
probe given more data."""

from __future__ import annotations

from cnnlab.lecture.results import Job, by, mean, mean_std, std, table
from cnnlab.lecture.stats import between, contrast
from cnnlab.lecture.verdicts import Finding, few_seeds, judge, signed, test, untrained, values


def best_by_val(jobs: list[Job], *keys: str) -> dict[tuple, tuple[str, list[Job]]]:
    """For each value of `keys`, the learning rate whose seeds' mean val/acc_best is highest (as
    transfer studies choose it) and that rate's jobs."""
    best: dict[tuple, tuple[str, list[Job]]] = {}
    for (*key, lr), members in by(jobs, *keys, "optimizer.lr").items():
        chosen = best.get(tuple(key))
        if chosen is None or mean(members, "val/acc_best") > mean(chosen[1], "val/acc_best"):
            best[tuple(key)] = (lr, members)
    return best


def transfer(jobs: list[Job]) -> Finding:
    best = {s: v for (s,), v in best_by_val(jobs, "transfer").items()}
    rows = [[s, lr, mean_std(m, "val/acc_best", 100), mean_std(m, "test/acc", 100)]
            for s, (lr, m) in best.items()]  # fmt: skip
    if "scratch" not in best or len(best) < 2:
        return Finding(table(["strategy"], rows), "no verdict: too few strategies finished", {})
    scratch = values(best["scratch"][1], "test/acc")
    parts = [test(between(values(members, "test/acc"), scratch),
                  f"{strategy} beats training from scratch",
                  f"{strategy} does not beat training from scratch")
             for strategy, (_, members) in best.items() if strategy != "scratch"]  # fmt: skip
    named = {s: m for s, (_, m) in best.items()}
    pretrained = {s: m for s, m in named.items() if s != "scratch"}
    verdict = judge(parts, few_seeds(named) or untrained(pretrained))
    header = ["strategy", "lr (best by val)", "val acc %", "test acc %"]
    plot = {"kind": "bars", "ylabel": "test accuracy %", "groups": ["test"],
            "series": {s: [mean(m, "test/acc") * 100] for s, (_, m) in best.items()},
            "errors": {s: [std(m, "test/acc") * 100] for s, (_, m) in best.items()}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def _images(members: list[Job]) -> int:
    return int(members[0].get("train_images", 0) or 0)


def probe_finetune(jobs: list[Job]) -> Finding:
    """Two parts: with the most training images fine-tuning beats the linear probe ("best
    results, more data"), and its lead over the probe is larger there than with the fewest
    ("the probe for small data"). Each strategy's rate chosen on validation, per size."""
    jobs = [j for j in jobs if j.set.get("transfer") in ("linear_probe", "finetune")]
    best = _best_per_size(jobs)
    sizes = sorted({size for size, _ in best})
    rows = [[f"{size:,}", s, lr, mean_std(m, "test/acc", 100)]
            for size in sizes for (z, s), (lr, m) in best.items() if z == size]  # fmt: skip
    header = ["training images", "strategy", "lr (best by val)", "test acc %"]
    complete = [z for z in sizes if (z, "finetune") in best and (z, "linear_probe") in best]
    if len(complete) < 2:
        return Finding(table(header, rows), "no verdict: too few sizes finished", {})
    acc = {key: values(m, "test/acc") for key, (_, m) in best.items()}
    lead = {
        z: mean(best[z, "finetune"][1], "test/acc") - mean(best[z, "linear_probe"][1], "test/acc")
        for z in complete
    }
    few, most = complete[0], complete[-1]
    named = {f"{s} with {z:,} images": m for (z, s), (_, m) in best.items()}
    verdict = judge(
        [test(between(acc[most, "finetune"], acc[most, "linear_probe"]),
              f"with {most:,} images fine-tuning beats the probe",
              f"with {most:,} images fine-tuning does not beat the probe"),
         test(contrast((1, acc[most, "finetune"]), (-1, acc[most, "linear_probe"]),
                       (-1, acc[few, "finetune"]), (1, acc[few, "linear_probe"])),
              "its lead grows with more data", "its lead does not grow with more data",
              what=f"lead {signed(lead[few])} points with {few:,} images, {signed(lead[most])} "
                   f"with {most:,}; difference ")],
        few_seeds(named) or untrained(named),
    )  # fmt: skip
    plot = {"kind": "bars", "ylabel": "test accuracy %", "groups": [f"{z:,} images" for z in sizes],
            "series": {s: [mean(best[z, s][1], "test/acc") * 100 if (z, s) in best else 0.0
                           for z in sizes] for s in ("linear_probe", "finetune")},
            "errors": {s: [std(best[z, s][1], "test/acc") * 100 if (z, s) in best else 0.0
                           for z in sizes] for s in ("linear_probe", "finetune")}}  # fmt: skip
    return Finding(table(header, rows), verdict, plot)


def _best_per_size(jobs: list[Job]) -> dict[tuple[int, str], tuple[str, list[Job]]]:
    """best_by_val per (training images, strategy): the sizes come from each job's metrics (the
    transfer sweep's jobs have no train_limit override of their own)."""
    sizes: dict[int, list[Job]] = {}
    for job in (j for j in jobs if j.ok):
        sizes.setdefault(_images([job]), []).append(job)
    return {(size, s): v for size, members in sizes.items()
            for (s,), v in best_by_val(members, "transfer").items()}  # fmt: skip

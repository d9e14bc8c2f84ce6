"""How a lecture claim's sentence is judged. Premises first: at least MIN_SEEDS seeds per
configuration, and the networks compared trained (relative to the task's chance, k classes) or,
where the sentence is about overfitting, fit their training split. Then each part of the
sentence is a test across seeds (stats.py: Welch's interval at LEVEL, and a minimum effect).
One verdict from the parts: "holds", "partly holds: … but …", "does not hold at this budget: …"
or "not judged: …" (too few seeds, or a premise the sentence needs did not hold)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.lecture.results import Job, mean
from cnnlab.lecture.stats import MIN_SEEDS, Difference


@dataclass
class Finding:
    table: str  # Markdown
    verdict: str  # one line: "holds: …", "not judged: …", …
    plot: dict  # what figures.py draws (kind + series)


@dataclass(frozen=True)
class Part:
    """One part of a sentence: held (True), did not (False), or could not be judged (None)."""

    held: bool | None
    text: str


# A network trained when its mean test accuracy covers at least this share of the way from
# chance (1/k) to 100 %: 32.5 % for ten digits, 40 % for a 5-class transfer task.
TRAINED_SHARE = 0.25
# It fits its training split when its training accuracy covers this share: 91 % for ten digits.
FIT_SHARE = 0.9
# The least effect that counts: 1 point of accuracy (10 of the 1,000 test digits), 0.05 of loss.
MIN_POINTS = 0.01
MIN_LOSS = 0.05


def chance(members: list[Job]) -> float:
    """1/k for the task the jobs ran (metrics.json's num_classes)."""
    return 1 / int(members[0].get("num_classes"))


def level(members: list[Job], share: float) -> float:
    c = chance(members)
    return c + share * (1 - c)


def pts(x: float) -> str:
    return f"{round(x * 100, 1) + 0.0:.1f}"  # + 0.0: no "-0.0"


def signed(x: float) -> str:
    return ("+" if round(x * 100, 1) > 0 else "") + pts(x)


def values(members: list[Job], metric: str | Callable[[Job], float]) -> list[float]:
    """Each seed's value of a metric (or of a function of one job)."""
    if callable(metric):
        return [float(metric(j)) for j in members]
    return [float(j.get(metric)) for j in members if j.get(metric) is not None]


def few_seeds(named: dict[str, list[Job]]) -> str:
    """The first premise: '' when every configuration has at least MIN_SEEDS seeds."""
    least = min((len(m) for m in named.values()), default=0)
    if least >= MIN_SEEDS:
        return ""
    short = [n for n, m in named.items() if len(m) == least]
    return (f"{least} seed(s) for {short[0]}{' and others' if len(short) > 1 else ''}; a test "
            f"across seeds needs at least {MIN_SEEDS} (seed=1,2,3)")  # fmt: skip


def _short_of(named: dict[str, list[Job]], metric: str, share: float):
    """(name, mean, level, jobs) of each group whose mean `metric` is below its level."""
    for name, members in named.items():
        value, need = mean(members, metric), level(members, share)
        if not value >= need:  # a NaN (not recorded) falls short too
            yield name, value, need, members


def untrained(named: dict[str, list[Job]]) -> str:
    """Every network compared trained: '' when it did, else what did not."""
    short = _short_of(named, "test/acc", TRAINED_SHARE)
    return "; ".join(f"{name} did not train (test accuracy {pts(acc)} % < {pts(need)} %, "
                     f"chance {pts(chance(jobs))} %)"
                     for name, acc, need, jobs in short)  # fmt: skip


def unfit(named: dict[str, list[Job]]) -> str:
    """Every network compared fit its training split: '' when it did, else what did not (a
    network that has not fit its training data cannot "overfit less")."""
    short = _short_of(named, "train/acc", FIT_SHARE)
    return "; ".join(f"{name} did not fit its training digits (training accuracy {pts(acc)} % "
                     f"< {pts(need)} %)" for name, acc, need, _ in short)  # fmt: skip


def overfitting(name: str, members: list[Job], diff: Difference) -> str:
    """The premise of "reduces overfitting": the reference network overfits (its gap is
    significantly above zero and at least MIN_POINTS)."""
    if diff.above(MIN_POINTS):
        return ""
    return f"{name} does not overfit (gap {diff.describe()})"


def test(
    diff: Difference, yes: str, no: str, minimum: float = MIN_POINTS, what: str = "", **form
) -> Part:
    """A part that holds when `diff` is significantly positive and at least `minimum`; `what`
    (the compared numbers) goes before the statistic."""
    held = diff.above(minimum)
    least = _min(minimum, form)
    return Part(held, f"{yes if held else no} ({what}{diff.describe(**form)}; minimum {least})")


def no_worse(diff: Difference, yes: str, no: str, minimum: float, what: str = "", **form) -> Part:
    """A part that holds when `diff` (worse − better) stays below `minimum` at LEVEL."""
    held = diff.within(minimum)
    least = _min(minimum, form)
    return Part(held, f"{yes if held else no} ({what}{diff.describe(**form)}; at most {least})")


def _min(minimum: float, form: dict) -> str:
    scale, unit = form.get("scale", 100.0), form.get("unit", " points")
    return f"{minimum * scale:g}{unit.rstrip('s') if minimum * scale == 1 else unit}"


def unjudged(why: str) -> Part:
    return Part(None, why)


def judge(parts: list[Part], premise: str = "") -> str:
    """One verdict from the sentence's parts; a failed premise leaves the claim not judged."""
    if premise:
        return f"not judged: {premise}"
    held = [p.text for p in parts if p.held]
    failed = [p.text for p in parts if p.held is False]
    open_ = [p.text for p in parts if p.held is None]
    if held and not failed and not open_:
        return "holds: " + "; ".join(held)
    if held:
        head = "partly holds: " + "; ".join(held)
        head += ("; but " + "; ".join(failed)) if failed else ""
    elif failed:
        head = "does not hold at this budget: " + "; ".join(failed)
    else:
        return "not judged: " + "; ".join(open_)
    return head + ("; not judged: " + "; ".join(open_) if open_ else "")

"""The test behind every part of a lecture verdict: a difference between means over seeds, with
Welch's t interval (unequal variances, Welch–Satterthwaite degrees of freedom) at LEVEL. It holds
when the interval lies on its side of zero *and* the effect reaches the part's minimum; a
"no worse than" part holds when the interval's far end stays within the minimum (non-inferiority).

A contrast (a difference of differences: "BatchNorm loses more than GroupNorm") uses the same
interval with more groups; scipy supplies Student's t distribution."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95  # two-sided confidence level of every interval in the report
MIN_SEEDS = 3  # seeds per configuration below which nothing is judged: no spread to test against


@dataclass(frozen=True)
class Difference:
    """A contrast of group means (e.g. mean(a) − mean(b)) and its LEVEL confidence interval."""

    effect: float
    low: float
    high: float
    p: float  # two-sided, against no difference
    seeds: tuple[int, ...]  # values per group

    def above(self, minimum: float) -> bool:
        """Significantly positive and at least `minimum`."""
        return bool(self.low > 0 and self.effect >= minimum)

    def within(self, minimum: float) -> bool:
        """No worse: the interval's upper end stays below `minimum` (a non-inferiority test)."""
        return bool(self.high < minimum)

    def describe(self, scale: float = 100.0, unit: str = " points", digits: int = 1) -> str:
        """'+3.0 points, 95 % CI +1.9 to +4.1, p = 0.003, 3+3 seeds'."""

        def num(x: float) -> str:
            text = f"{x * scale:+.{digits}f}"
            return text[1:] if float(text) == 0 else text  # no "+0.0" or "-0.0"

        seeds = "+".join(map(str, self.seeds))
        return (f"{num(self.effect)}{unit}, {LEVEL * 100:g} % CI {num(self.low)} to "
                f"{num(self.high)}, {_p(self.p)}, {seeds} seeds")  # fmt: skip


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def contrast(*terms: tuple[float, Sequence[float]]) -> Difference:
    """Σ weight × mean(values) over independent groups, each `(weight, values)`, with Welch's
    interval: variance Σ w²s²/n, Welch–Satterthwaite degrees of freedom."""
    from scipy import stats

    effect, var, dof_denominator = 0.0, 0.0, 0.0
    for weight, values in terms:
        n = len(values)
        effect += weight * statistics.fmean(values)
        part = weight**2 * (statistics.variance(values) if n > 1 else 0.0) / n
        var += part
        dof_denominator += part**2 / (n - 1) if n > 1 else 0.0
    seeds = tuple(len(v) for _, v in terms)
    if var == 0.0:  # every seed gave the same value: the difference is exact
        return Difference(effect, effect, effect, 0.0 if effect else 1.0, seeds)
    se = math.sqrt(var)
    dof = var**2 / dof_denominator if dof_denominator else math.inf
    half = stats.t.ppf(0.5 + LEVEL / 2, dof) * se
    p = 2 * stats.t.sf(abs(effect) / se, dof)
    return Difference(effect, float(effect - half), float(effect + half), float(p), seeds)


def between(a: Sequence[float], b: Sequence[float]) -> Difference:
    """mean(a) − mean(b), Welch's two-sample interval."""
    return contrast((1.0, a), (-1.0, b))


def above_zero(values: Sequence[float]) -> Difference:
    """mean(values), one-sample t interval (e.g. an overfitting gap per seed)."""
    return contrast((1.0, values))

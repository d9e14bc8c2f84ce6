"""How a lecture claim's sentence is judged: the premise (the networks compared trained), the
margin a difference must exceed (the seed-to-seed spread, at least MIN_MARGIN), and one verdict
from the sentence's parts: "holds", "partly holds: … but …" or "does not hold at this budget"."""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.lecture.results import Job, mean, std


@dataclass
class Finding:
    table: str  # Markdown
    verdict: str  # one line: "holds: …" or "does not hold at this budget: …"
    plot: dict  # what figures.py draws (kind + series)


CHANCE = 1 / 10  # ten digits
# A network "trained" when its mean test accuracy is at least 3× chance: far above the 10–18 %
# that untrained networks of these sweeps score after a couple of batches.
TRAINED = 3 * CHANCE


def pts(x: float) -> str:
    return f"{round(x * 100, 1) + 0.0:.1f}"  # + 0.0: no "-0.0"


# The least difference that counts, in accuracy (5 of the 1,000 test digits) or in loss: with one
# seed there is no spread, and a float rounding must not decide a verdict.
MIN_MARGIN = 0.005


def signed(x: float) -> str:
    return ("+" if round(x * 100, 1) > 0 else "") + pts(x)


def spread(*groups: list[Job], metric: str = "test/acc") -> float:
    """The margin a difference must exceed: the larger seed-to-seed standard deviation of the
    groups, and at least MIN_MARGIN."""
    return max([MIN_MARGIN, *(std(g, metric) for g in groups)])


def untrained(named: dict[str, list[Job]]) -> str:
    """The premise: every network compared trained. '' when it did, else what did not."""
    low = {n: mean(m, "test/acc") for n, m in named.items() if mean(m, "test/acc") < TRAINED}
    return "; ".join(f"{n} did not train (test accuracy {pts(a)} % < {pts(TRAINED)} %)"
                     for n, a in low.items())  # fmt: skip


def judge(parts: list[tuple[bool, str]], premise: str = "") -> str:
    """One verdict from the sentence's parts (each: held?, its numbers)."""
    if premise:
        return f"does not hold at this budget: {premise}"
    held = [text for ok, text in parts if ok]
    failed = [text for ok, text in parts if not ok]
    if not failed:
        return "holds: " + "; ".join(held)
    if held:
        return "partly holds: " + "; ".join(held) + "; but " + "; ".join(failed)
    return "does not hold at this budget: " + "; ".join(failed)


def part(ok: bool, yes: str, no: str, numbers: str) -> tuple[bool, str]:
    """One part of a sentence, said the way it came out, with its numbers."""
    return ok, f"{yes if ok else no} ({numbers})"

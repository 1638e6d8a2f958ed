"""Repeated generations of one case: reducing their scores, and how consistent they are."""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

REDUCERS = ("mean", "majority", "pass_at_k", "pass_all_k")


def reduce_scores(values: Sequence[float], how: str = "mean") -> float:
    """One case's score from the scores of its generations.

    ``mean``; ``majority``: the score most generations got (ties: the lower);
    ``pass_at_k``: the best; ``pass_all_k``: the worst.
    """
    if not values:
        raise ValueError("no scores to reduce")
    if how == "mean":
        return sum(values) / len(values)
    if how == "pass_at_k":
        return max(values)
    if how == "pass_all_k":
        return min(values)
    if how == "majority":
        counts = Counter(values)
        return min(counts, key=lambda v: (-counts[v], v))
    raise ValueError(f"unknown reducer {how!r} (known: {', '.join(REDUCERS)})")


def consistency(per_repeat: Mapping[str, Sequence[float]], outputs: Sequence[str] = ()) -> float:
    """Share of the generations that agree with the most common one: on the pass/fail
    verdict of every 0/1 metric at once, or, without such a metric, on the output text
    (latency and other continuous scores always differ, so they are not compared)."""
    binary = [values for values in per_repeat.values() if all(v in (0.0, 1.0) for v in values)]
    rows: list[tuple[object, ...]] = list(zip(*binary, strict=True)) if binary else [(" ".join(o.split()),) for o in outputs]
    if not rows:
        return 1.0
    return Counter(rows).most_common(1)[0][1] / len(rows)

"""Aggregators: turn a variant's per-case scores into one value."""

from __future__ import annotations

import math
from typing import Sequence


def mean(scores: Sequence[float]) -> float:
    """The arithmetic mean; NaN when there are no scores."""
    if not scores:
        return math.nan
    return math.fsum(scores) / len(scores)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between ranks.

    Gives the same value as numpy's default (``method="linear"``); NaN when there are
    no values.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])

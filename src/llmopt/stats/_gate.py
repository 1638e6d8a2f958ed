"""Decisions on deltas: the confidence gate, Holm's correction and power.

A delta is oriented as a *gain* (positive = the variant is better), so one rule
serves metrics where higher is better and those where lower is (latency, cost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Sequence

#: The power at which the minimum detectable effect is quoted.
POWER = 0.8


@dataclass(frozen=True)
class Power:
    """The minimum detectable effect at this n and confidence, and whether the asked
    margin is below it (then ``needed_n`` estimates the cases that would reach it)."""

    mde: float | None
    underpowered: bool
    needed_n: int | None
    #: The margin compared with the MDE (min_delta or max_drop; 0 when none was asked).
    margin: float = 0.0


def superiority_passes(gain_low: Any, p_value: Any, min_delta: float, alpha: float) -> Any:
    """The confidence gate of ``min_delta``: the interval's lower bound on the gain is at
    least ``min_delta`` (above 0 without one) and the test of no difference rejects at
    ``alpha``; a negative ``min_delta`` (a tolerated loss) needs the bound only.
    Element-wise on arrays (for the simulation tests)."""
    import numpy as np

    low = np.asarray(gain_low, dtype=float)
    if min_delta < 0.0:
        return low >= min_delta
    above = low > 0.0 if min_delta == 0.0 else low >= min_delta
    return above & (np.asarray(p_value, dtype=float) <= alpha)


def margin_passes(gain_low: Any, max_drop: float) -> Any:
    """Non-inferiority: the interval's lower bound on the gain is at least ``-max_drop``."""
    import numpy as np

    return np.asarray(gain_low, dtype=float) >= -max_drop


def holm(p_values: Sequence[float | None]) -> list[float]:
    """Holm-adjusted p-values (a missing p-value counts as 1)."""
    values = [1.0 if p is None else float(p) for p in p_values]
    order = sorted(range(len(values)), key=lambda i: values[i])
    adjusted = [1.0] * len(values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(values) - rank) * values[i]))
        adjusted[i] = running
    return adjusted


def holm_level(p_values: Sequence[float | None], index: int, confidence: float) -> float:
    """The confidence of the interval for the ``index``-th test under Holm's step-down:
    the i-th smallest of m p-values is tested at alpha / (m - i + 1)."""
    values = [1.0 if p is None else float(p) for p in p_values]
    rank = sorted(range(len(values)), key=lambda i: values[i]).index(index)
    return 1.0 - (1.0 - confidence) / (len(values) - rank)


def power(se: float | None, n: int, confidence: float, margin: float) -> Power:
    """Minimum detectable effect (two-sided ``confidence``, 80% power) for an estimate
    with standard error ``se`` on ``n`` cases, against the asked ``margin``."""
    if se is None or n < 2:
        return Power(None, margin > 0.0, None, margin)
    normal = NormalDist()
    mde = float((normal.inv_cdf(1.0 - (1.0 - confidence) / 2.0) + normal.inv_cdf(POWER)) * se)
    if margin <= 0.0 or mde <= margin:
        return Power(mde, False, None, margin)
    return Power(mde, True, int(math.ceil(n * (mde / margin) ** 2)), margin)


def unchanged_gain_low(n: int, confidence: float) -> float:
    """The lower bound of the gain when nothing changed: the interval of ``n`` pairs of
    identical 0/1 (or [0, 1]) scores, ``-z / (n + 2)`` (Agresti-Min; the paired t of
    identical scores uses the same standard error)."""
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    return max(-1.0, -z / (n + 2))


def unchanged_margin_n(max_drop: float, confidence: float) -> int | None:
    """The fewest cases at which a non-inferiority gate of ``max_drop`` passes when
    nothing changed (None for a margin of 0, which identical scores never pass)."""
    if max_drop <= 0.0:
        return None
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    return max(2, math.ceil(z / max_drop - 2.0 - 1e-12))

"""Uncertainty of aggregates and of paired deltas, by a seeded case bootstrap.

Cases are resampled whole (all repeats of a case move together), and the metric's own
aggregator is applied to each resample, so the same code serves means, percentiles and
corpus-level scores such as macro F1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
Aggregate = Callable[[Sequence[T]], float]

RESAMPLES = 1000
#: Resamples for aggregates other than the mean (each one calls the metric's own
#: aggregate, e.g. scikit-learn's macro F1, so they cost far more than a mean).
GENERIC_RESAMPLES = 300
SEED = 20240601


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided percentile interval."""

    value: float
    low: float
    high: float


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _interval(value: float, draws: list[float], confidence: float) -> Interval:
    draws.sort()
    tail = (1.0 - confidence) / 2.0
    return Interval(value, _percentile(draws, tail), _percentile(draws, 1.0 - tail))


def bootstrap(
    groups: Sequence[T], aggregate: Aggregate, confidence: float = 0.95, resamples: int = GENERIC_RESAMPLES
) -> Interval | None:
    """Percentile interval of ``aggregate`` over resamples of ``groups`` (one per case)."""
    if not groups:
        return None
    value = aggregate(groups)
    if len(groups) == 1:
        return Interval(value, value, value)
    rng = random.Random(SEED)
    n = len(groups)
    draws = [aggregate([groups[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples)]
    return _interval(value, draws, confidence)


def bootstrap_mean(values: Sequence[float], confidence: float = 0.95, resamples: int = RESAMPLES) -> Interval | None:
    """Percentile interval of the mean of ``values`` (one per case), vectorized."""
    import numpy as np

    if not values:
        return None
    data = np.asarray(values, dtype=float)
    value = float(data.mean())
    if len(data) == 1:
        return Interval(value, value, value)
    picks = np.random.default_rng(SEED).integers(0, len(data), size=(resamples, len(data)))
    draws = data[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return Interval(value, float(low), float(high))


def paired_bootstrap(
    pairs: Sequence[tuple[T, T]],
    aggregate: Aggregate,
    confidence: float = 0.95,
    resamples: int = GENERIC_RESAMPLES,
) -> Interval | None:
    """Interval of ``aggregate(a) - aggregate(b)`` resampling the paired cases together."""
    if not pairs:
        return None

    def delta(sample: Sequence[tuple[T, T]]) -> float:
        return aggregate([a for a, _ in sample]) - aggregate([b for _, b in sample])

    return bootstrap(pairs, delta, confidence, resamples)

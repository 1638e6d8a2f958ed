"""Paired comparisons of two variants on the same cases: the delta, its interval and
the p-value of "no difference".

Binary scores use the exact McNemar test and the Agresti-Min interval; other means a
paired t (cluster-robust when cases come in groups); other aggregates a paired
bootstrap that resamples cases (or clusters) together.

When every difference is the same (two runs that agree on every case), their spread
cannot be estimated; rather than a zero-width interval, the standard error is then
``width / (n + 2)``, where ``width`` is the range of one score (1 for scores in [0, 1]):
Agresti-Min's half a case each way, as for 0/1 scores. The delta of two means of
[0, 1] scores lies in [-1, 1], and so does its interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ._intervals import (
    Bounds,
    bootstrap_draws,
    clip,
    cluster_se,
    is_binary,
    resample_groups,
    t_value,
    unit_bounds,
    warn_few_clusters,
    z_value,
)


@dataclass(frozen=True)
class Paired:
    """``delta`` = aggregate(variant) - aggregate(other), with its interval and test."""

    delta: float
    low: float | None
    high: float | None
    se: float | None
    p_value: float | None
    test: str
    n: int
    confidence: float = 0.95


def mcnemar_p(better: Any, worse: Any) -> Any:
    """Exact two-sided McNemar p-value from the discordant pair counts (element-wise)."""
    import numpy as np
    from scipy.special import bdtr

    b = np.asarray(better, dtype=np.int64)
    c = np.asarray(worse, dtype=np.int64)
    m = b + c
    p = 2.0 * bdtr(np.minimum(b, c), np.maximum(m, 1), 0.5)
    return np.where(m == 0, 1.0, np.minimum(p, 1.0))


def agresti_min(better: Any, worse: Any, n: Any, confidence: float = 0.95) -> tuple[Any, Any, Any]:
    """Agresti-Min interval of a paired difference of proportions (half a case added
    to each cell of the 2x2 table), and its standard error; element-wise. The bounds
    are cut to [-1, 1], the range of a difference of proportions (with every pair
    discordant one way the raw interval reaches past it)."""
    import numpy as np

    b = np.asarray(better, dtype=float) + 0.5
    c = np.asarray(worse, dtype=float) + 0.5
    total = np.asarray(n, dtype=float) + 2.0
    centre = (b - c) / total
    se = np.sqrt((b + c) - (b - c) ** 2 / total) / total
    half = z_value(confidence) * se
    return np.maximum(centre - half, -1.0), np.minimum(centre + half, 1.0), se


def paired_binary(mine: Sequence[float], theirs: Sequence[float], confidence: float = 0.95) -> Paired:
    """Exact McNemar test and Agresti-Min interval for 0/1 scores paired by case."""
    better = sum(1 for x, y in zip(mine, theirs, strict=True) if x > y)
    worse = sum(1 for x, y in zip(mine, theirs, strict=True) if x < y)
    n = len(mine)
    low, high, se = agresti_min(better, worse, n, confidence)
    p = float(mcnemar_p(better, worse))
    return Paired((better - worse) / n, float(low), float(high), float(se), p, "mcnemar-exact", n, confidence)


def paired_t(
    differences: Sequence[float], confidence: float = 0.95, *, width: float | None = None, bounds: Bounds | None = None
) -> Paired:
    """Paired t interval and two-sided p-value of the mean difference; ``width`` (the
    range of one score) sets the standard error of identical differences, ``bounds``
    the range of the delta."""
    import numpy as np

    d = np.asarray(differences, dtype=float)
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return Paired(mean, None, None, None, None, "paired-t", n, confidence)
    se = float(d.std(ddof=1) / np.sqrt(n))
    return _t_result(mean, se, n - 1, n, "paired-t", confidence, width, bounds)


def paired_cluster_t(
    differences: Sequence[float],
    clusters: Sequence[object],
    confidence: float = 0.95,
    *,
    width: float | None = None,
    bounds: Bounds | None = None,
) -> Paired:
    """Paired t with a cluster-robust (CR2) standard error (cases grouped, e.g. by document)."""
    mean, se, count = cluster_se(differences, clusters)
    if count < 2:
        return Paired(mean, None, None, None, None, "paired-cluster-t", len(differences), confidence)
    warn_few_clusters(count)
    return _t_result(mean, se, count - 1, len(differences), "paired-cluster-t", confidence, width, bounds)


def _t_result(
    mean: float,
    se: float,
    df: int,
    n: int,
    test: str,
    confidence: float,
    width: float | None = None,
    bounds: Bounds | None = None,
) -> Paired:
    from scipy.special import stdtr

    if se == 0.0:
        return _identical(mean, n, test, confidence, width, bounds)
    half = float(t_value(confidence, df)) * se
    p = float(2.0 * stdtr(df, -abs(mean) / se))
    low, high = clip(mean - half, mean + half, bounds)
    return Paired(mean, low, high, se, p, test, n, confidence)


def _identical(
    mean: float, n: int, test: str, confidence: float, width: float | None, bounds: Bounds | None
) -> Paired:
    """Identical differences: a normal interval on the standard error ``width / (n + 2)``
    (Agresti-Min's for 0/1 scores that agree on every case); none without a width."""
    from statistics import NormalDist

    if not width:
        return Paired(mean, None, None, None, 1.0 if mean == 0.0 else None, test, n, confidence)
    se = width / (n + 2)
    half = float(z_value(confidence)) * se
    p = min(1.0, 2.0 * NormalDist().cdf(-abs(mean) / se))
    low, high = clip(mean - half, mean + half, bounds)
    return Paired(mean, low, high, se, p, test, n, confidence)


def score_width(scores: Sequence[float]) -> float:
    """The range of one score: 1 for scores in [0, 1], else the range observed."""
    if unit_bounds(scores) is not None:
        return 1.0
    return float(max(scores) - min(scores)) if scores else 0.0


def paired_means(
    mine: Sequence[float], theirs: Sequence[float], confidence: float = 0.95, clusters: Sequence[object] | None = None
) -> Paired:
    """The paired comparison of two means: McNemar for 0/1 scores, else paired t."""
    differences = [x - y for x, y in zip(mine, theirs, strict=True)]
    scores = list(mine) + list(theirs)
    width = score_width(scores)
    bounds = (-1.0, 1.0) if unit_bounds(scores) is not None else None
    if clusters is not None:
        return paired_cluster_t(differences, clusters, confidence, width=width, bounds=bounds)
    if is_binary(scores):
        return paired_binary(mine, theirs, confidence)
    return paired_t(differences, confidence, width=width, bounds=bounds)


def paired_bootstrap(
    delta: Callable[[list[int]], float], n: int, confidence: float = 0.95, clusters: Sequence[object] | None = None
) -> Paired:
    """Paired percentile bootstrap of ``delta(indexes)``, resampling cases (or clusters)
    of both variants together; the p-value is twice the smaller tail share at 0."""
    import numpy as np

    value = float(delta(list(range(n))))
    units = resample_groups(clusters, n)
    if len(units) < 2:
        return Paired(value, None, None, None, None, "paired-bootstrap", n, confidence)
    if clusters is not None:
        warn_few_clusters(len(units))
    low, high, draws = bootstrap_draws(units, delta, confidence)
    tail = min(float(np.mean(draws <= 0.0)), float(np.mean(draws >= 0.0)))
    p = 1.0 if np.all(draws == 0.0) else min(1.0, 2.0 * tail)
    return Paired(value, low, high, float(np.std(draws, ddof=1)), p, "paired-bootstrap", n, confidence)

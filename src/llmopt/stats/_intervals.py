"""Intervals of one aggregate: Wilson for binary means, t for other means, cluster-robust
t when cases come in groups, and a seeded percentile bootstrap for everything else.

Scores that all lie in [0, 1] are taken to be bounded there: the interval of their mean
is cut to [0, 1] (a mean of such scores cannot leave it), and identical continuous
scores get the Wilson interval of their value instead of a zero-width one. Clustered
means use the bias-reduced CR2 standard error (never below the plain one) with t on
G - 1 degrees of freedom; below ``MIN_CLUSTERS`` clusters a FewClustersWarning says
the interval is rough.

The analytic functions take numpy arrays and work element-wise (or along the last
axis), so the simulation tests check the very code the gates use, thousands of runs
at a time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")
Aggregate = Callable[[Sequence[T]], float]

#: Resamples of the bootstrap (each one calls the metric's own aggregate).
RESAMPLES = 999
SEED = 20240601
#: Fewer clusters than this make a cluster-robust interval rough (a warning says so).
MIN_CLUSTERS = 10

Bounds = tuple[float, float]
#: The range of scores that all lie in [0, 1].
UNIT = (0.0, 1.0)


class FewClustersWarning(UserWarning):
    """A cluster-robust interval rests on fewer than MIN_CLUSTERS clusters."""


@dataclass(frozen=True)
class Interval:
    """A point estimate, its standard error and a two-sided confidence interval.

    ``method`` names how it was computed: ``wilson``, ``t``, ``cluster`` or
    ``bootstrap``; ``low``/``high``/``se`` are None when ``n`` is too small to say.
    """

    value: float
    low: float | None
    high: float | None
    se: float | None
    n: int
    method: str
    confidence: float = 0.95
    clusters: int | None = None


def z_value(confidence: Any) -> Any:
    """The two-sided normal quantile of ``confidence`` (1.96 for 0.95), element-wise.

    From the standard library: importing ``scipy.stats`` costs half a second, more than
    a warm run of a thousand cached cases."""
    import numpy as np

    quantile = np.vectorize(NormalDist().inv_cdf, otypes=[float])
    found = quantile(1.0 - (1.0 - np.asarray(confidence, dtype=float)) / 2.0)
    return float(found) if found.ndim == 0 else found


def t_value(confidence: Any, df: Any) -> Any:
    """The two-sided Student t quantile of ``confidence`` with ``df`` degrees of freedom."""
    from scipy.special import stdtrit

    return stdtrit(df, 1.0 - (1.0 - confidence) / 2.0)


def wilson(successes: Any, n: Any, confidence: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval of a binomial proportion (element-wise)."""
    import numpy as np

    z = z_value(confidence)
    n = np.asarray(n, dtype=float)
    p = np.asarray(successes, dtype=float) / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return centre - half, centre + half


def t_interval(values: Any, confidence: float = 0.95) -> tuple[Any, Any, Any, Any]:
    """Mean, standard error and t interval along the last axis (n >= 2)."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    n = data.shape[-1]
    mean = data.mean(axis=-1)
    se = data.std(axis=-1, ddof=1) / np.sqrt(n)
    half = t_value(confidence, n - 1) * se
    return mean, se, mean - half, mean + half


def cluster_se(values: Any, groups: Any) -> tuple[float, float, int]:
    """Mean, cluster-robust standard error of the mean, and the cluster count.

    The standard error is CR2 (Bell and McCaffrey: each cluster's residual sum scaled
    by ``(1 - n_g / N) ** -1/2``, so few or uneven clusters do not understate it), and
    never below the plain standard error: with a handful of clusters the robust
    estimate is itself too noisy to be trusted when it comes out smaller."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    _, index = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    count = int(index.max()) + 1 if len(index) else 0
    mean = float(data.mean())
    total = len(data)
    sums = np.bincount(index, weights=data - mean, minlength=count)
    sizes = np.bincount(index, minlength=count).astype(float)
    leverage = np.where(sizes < total, 1.0 - sizes / total, 1.0)
    variance = float(np.sum(sums**2 / leverage)) / total**2
    plain = float(data.std(ddof=1)) / np.sqrt(total) if total > 1 else 0.0
    return mean, max(float(np.sqrt(variance)), plain), count


def unit_bounds(values: Sequence[float]) -> Bounds | None:
    """[0, 1] when every score lies in it (then so does their mean), else None."""
    return UNIT if len(values) and all(0.0 <= v <= 1.0 for v in values) else None


def clip(low: float, high: float, bounds: Bounds | None) -> tuple[float, float]:
    """``(low, high)`` cut to ``bounds`` (unchanged without)."""
    if bounds is None:
        return low, high
    return max(low, bounds[0]), min(high, bounds[1])


def is_binary(values: Sequence[float]) -> bool:
    """True when every value is 0 or 1 (a pass/fail metric)."""
    return bool(values) and all(v in (0.0, 1.0) for v in values)


def mean_interval(
    values: Sequence[float],
    confidence: float = 0.95,
    clusters: Sequence[object] | None = None,
    *,
    bounds: Bounds | None = None,
) -> Interval:
    """The interval of a mean: cluster-robust t, Wilson (binary) or t, cut to
    ``bounds`` (by default [0, 1] when every score lies in it)."""
    import numpy as np

    n = len(values)
    value = float(np.mean(values))
    bounds = bounds or unit_bounds(values)
    if clusters is not None:
        return _cluster_interval(values, clusters, confidence, bounds)
    if is_binary(values):
        low, high = wilson(sum(values), n, confidence)
        se = float(np.sqrt(value * (1.0 - value) / n))
        return Interval(value, float(low), float(high), se, n, "wilson", confidence)
    if n < 2:
        return Interval(value, None, None, None, n, "t", confidence)
    _, se, low, high = t_interval(values, confidence)
    if float(se) == 0.0:
        return _constant_interval(value, n, confidence, bounds)
    low, high = clip(float(low), float(high), bounds)
    return Interval(value, low, high, float(se), n, "t", confidence)


def _constant_interval(value: float, n: int, confidence: float, bounds: Bounds | None) -> Interval:
    """Identical scores: their spread cannot be estimated, so a zero-width interval
    would claim certainty. Scores in [0, 1] get the Wilson interval of their value (a
    mean of [0, 1] scores varies at most as much as a rate does); others none."""
    if bounds != UNIT:
        return Interval(value, None, None, None, n, "t", confidence)
    low, high = wilson(value * n, n, confidence)
    se = max(float((value * (1.0 - value) / n) ** 0.5), 1.0 / (n + 2))
    return Interval(value, float(low), float(high), se, n, "wilson", confidence)


def _cluster_interval(
    values: Sequence[float], clusters: Sequence[object], confidence: float, bounds: Bounds | None
) -> Interval:
    mean, se, count = cluster_se(values, clusters)
    if count < 2:
        return Interval(mean, None, None, None, len(values), "cluster", confidence, count)
    warn_few_clusters(count)
    if se == 0.0:
        return _constant_interval(mean, len(values), confidence, bounds)
    half = float(t_value(confidence, count - 1)) * se
    low, high = clip(mean - half, mean + half, bounds)
    return Interval(mean, low, high, se, len(values), "cluster", confidence, count)


def warn_few_clusters(count: int) -> None:
    """A FewClustersWarning when ``count`` clusters are too few for a robust interval."""
    if count < MIN_CLUSTERS:
        warnings.warn(
            FewClustersWarning(
                f"task.cluster: only {count} clusters; a cluster-robust interval needs about {MIN_CLUSTERS} "
                f"or more, so this one (CR2, t on {count - 1} degrees of freedom) is wide and rough"
            ),
            stacklevel=3,
        )


def resample_groups(clusters: Sequence[object] | None, n: int) -> list[list[int]]:
    """The units the bootstrap resamples: one per case, or one per cluster of cases."""
    if clusters is None:
        return [[i] for i in range(n)]
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(clusters):
        groups.setdefault(str(name), []).append(i)
    return list(groups.values())


def bootstrap_draws(
    units: list[list[int]], statistic: Callable[[list[int]], float], confidence: float, resamples: int = RESAMPLES
) -> tuple[float, float, Any]:
    """Percentile interval and draws of ``statistic`` over resamples of ``units`` (scipy)."""
    import numpy as np
    from scipy.stats import bootstrap

    def on_units(picks: Any) -> float:
        return statistic([i for unit in picks for i in units[int(unit)]])

    result = bootstrap(
        (np.arange(len(units)),),
        on_units,
        vectorized=False,
        n_resamples=resamples,
        method="percentile",
        confidence_level=confidence,
        rng=np.random.default_rng(SEED),
    )
    ci = result.confidence_interval
    return float(ci.low), float(ci.high), result.bootstrap_distribution


def bootstrap_interval(
    items: Sequence[T],
    aggregate: Aggregate[T],
    confidence: float = 0.95,
    clusters: Sequence[object] | None = None,
    resamples: int = RESAMPLES,
) -> Interval:
    """Percentile bootstrap of ``aggregate`` resampling cases (or whole clusters)."""
    import numpy as np

    value = float(aggregate(items))
    units = resample_groups(clusters, len(items))
    method = "cluster" if clusters is not None else "bootstrap"
    count = len(units) if clusters is not None else None
    if len(units) < 2:
        return Interval(value, None, None, None, len(items), method, confidence, count)
    if count is not None:
        warn_few_clusters(count)
    low, high, draws = bootstrap_draws(units, lambda idx: aggregate([items[i] for i in idx]), confidence, resamples)
    se = float(np.std(draws, ddof=1))
    return Interval(value, low, high, se, len(items), method, confidence, count)

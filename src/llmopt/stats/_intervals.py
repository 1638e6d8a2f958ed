"""Intervals of one aggregate: Wilson for binary means, t for other means, cluster-robust
t when cases come in groups, and a seeded percentile bootstrap for everything else.

The analytic functions take numpy arrays and work element-wise (or along the last
axis), so the simulation tests check the very code the gates use, thousands of runs
at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")
Aggregate = Callable[[Sequence[T]], float]

#: Resamples of the bootstrap (each one calls the metric's own aggregate).
RESAMPLES = 999
SEED = 20240601


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
    """Mean, cluster-robust (CR1) standard error of the mean, and the cluster count."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    _, index = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    count = int(index.max()) + 1 if len(index) else 0
    mean = float(data.mean())
    sums = np.bincount(index, weights=data - mean, minlength=count)
    variance = count / max(count - 1, 1) * float(np.sum(sums**2)) / len(data) ** 2
    return mean, float(np.sqrt(variance)), count


def is_binary(values: Sequence[float]) -> bool:
    """True when every value is 0 or 1 (a pass/fail metric)."""
    return bool(values) and all(v in (0.0, 1.0) for v in values)


def mean_interval(
    values: Sequence[float], confidence: float = 0.95, clusters: Sequence[object] | None = None
) -> Interval:
    """The interval of a mean: cluster-robust t, Wilson (binary) or t."""
    import numpy as np

    n = len(values)
    value = float(np.mean(values))
    if clusters is not None:
        return _cluster_interval(values, clusters, confidence)
    if is_binary(values):
        low, high = wilson(sum(values), n, confidence)
        se = float(np.sqrt(value * (1.0 - value) / n))
        return Interval(value, float(low), float(high), se, n, "wilson", confidence)
    if n < 2:
        return Interval(value, None, None, None, n, "t", confidence)
    mean, se, low, high = t_interval(values, confidence)
    return Interval(value, float(low), float(high), float(se), n, "t", confidence)


def _cluster_interval(values: Sequence[float], clusters: Sequence[object], confidence: float) -> Interval:
    mean, se, count = cluster_se(values, clusters)
    if count < 2:
        return Interval(mean, None, None, None, len(values), "cluster", confidence, count)
    half = float(t_value(confidence, count - 1)) * se
    return Interval(mean, mean - half, mean + half, se, len(values), "cluster", confidence, count)


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
    low, high, draws = bootstrap_draws(units, lambda idx: aggregate([items[i] for i in idx]), confidence, resamples)
    se = float(np.std(draws, ddof=1))
    return Interval(value, low, high, se, len(items), method, confidence, count)

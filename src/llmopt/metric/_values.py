"""A metric's value over a variant's cases: the aggregate, its standard error and a
95% interval (analytic for means: Wilson, t, cluster-robust; bootstrap otherwise).

The engine hands over its case results; this module reads only the fields of
:class:`ScoredCase`, so metrics stay a leaf that never imports the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from ..dataset._case import Case
from ._base import Metric, Sample
from ._case_metric import is_mean_aggregate

__all__ = ["Aggregate", "Prepared", "ScoredCase", "aggregate", "aggregate_prepared", "case_samples", "prepared"]


class ScoredCase(Protocol):
    """What aggregation reads of one case's result (read-only, so a frozen dataclass fits)."""

    @property
    def id(self) -> str: ...
    @property
    def expected(self) -> Any: ...
    @property
    def relevant(self) -> tuple[str, ...] | None: ...
    @property
    def outputs(self) -> tuple[str, ...]: ...
    @property
    def latencies_s(self) -> tuple[float, ...]: ...
    @property
    def scores(self) -> Mapping[str, float]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def cluster(self) -> str | None: ...
    @property
    def retrieved_documents(self) -> tuple[str, ...]: ...


def case_samples(case: ScoredCase) -> list[Sample]:
    """The samples of a scored case, rebuilt for aggregation."""
    source = Case(id=case.id, expected=case.expected, relevant=case.relevant)
    docs = case.retrieved_documents
    pairs = zip(case.outputs, case.latencies_s, strict=True)
    samples = [Sample(case=source, output=o, latency_s=lat, retrieved=docs) for o, lat in pairs]
    return samples or [Sample(case=source, output="", retrieved=docs)]


Prepared = tuple[list[Sample], list[float]]


def prepared(cases: Sequence[ScoredCase], key: str) -> list[Prepared]:
    """Each case's samples and scores, built once for repeated aggregation."""
    out: list[Prepared] = []
    for case in cases:
        samples = case_samples(case)
        out.append((samples, [case.scores[key]] * len(samples)))
    return out


def aggregate_prepared(metric: Metric, args: Mapping[str, Any], group: Sequence[Prepared]) -> float:
    """The metric's own aggregate over prepared cases."""
    samples = [s for case_samples_, _ in group for s in case_samples_]
    scores = [x for _, case_scores in group for x in case_scores]
    return float(metric.aggregate(samples, scores, args))


def aggregate(metric: Metric, args: Mapping[str, Any], key: str, cases: Sequence[ScoredCase]) -> "Aggregate | None":
    """The value of the metric scored under ``key`` over the cases without errors,
    with its interval (None when no case was scored)."""
    from ..stats import bootstrap_interval, mean_interval

    scored = [c for c in cases if c.error is None and key in c.scores]
    if not scored:
        return None
    clusters = [str(c.cluster) for c in scored] if scored[0].cluster is not None else None
    if is_mean_aggregate(metric):
        values = [c.scores[key] for c in scored]
        interval = mean_interval(values, clusters=clusters, bounds=declared_bounds(metric, values))
    else:
        groups = prepared(scored, key)
        interval = bootstrap_interval(groups, lambda g: aggregate_prepared(metric, args, g), clusters=clusters)
    return Aggregate(interval, len(scored))


def declared_bounds(metric: Metric, values: Sequence[float]) -> tuple[float, float] | None:
    """The metric's ``value_range`` as interval bounds (an open side unbounded) when
    every score lies in it, so a mean's interval stays inside the range; else None
    (the interval then finds its bounds from the scores)."""
    low, high = getattr(metric, "value_range", (None, None))
    if low is None and high is None:
        return None
    bounds = (float("-inf") if low is None else float(low), float("inf") if high is None else float(high))
    return bounds if all(bounds[0] <= v <= bounds[1] for v in values) else None


@dataclass(frozen=True)
class Aggregate:
    """A metric's value over ``n`` scored cases, with its interval (``stats``)."""

    interval: Any
    n: int

    @property
    def ci(self) -> tuple[float, float] | None:
        low, high = self.interval.low, self.interval.high
        return (low, high) if low is not None and high is not None else None

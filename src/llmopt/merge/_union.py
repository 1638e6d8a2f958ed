"""One variant's result rebuilt from its shards: the union of their case records in
the order of an unsharded run, with every metric value and interval recomputed from
the cases (never from the shards' numbers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..engine._records import case_from_json, usage_from_json
from ..engine.results import CaseResult, MetricValue, Usage, VariantResult

if TYPE_CHECKING:
    from ..metric import Metric

__all__ = ["merged_variant"]


def merged_variant(
    scenario: str, name: str, parts: Sequence[Mapping[str, Any]], metrics: Mapping[str, tuple["Metric", Mapping[str, Any]]]
) -> VariantResult:
    """The variant ``name`` of ``scenario`` from each shard's entry of it; ``metrics``
    maps each metric key to its metric and arguments (the spec's, for this variant)."""
    cases = _union(parts)
    first = parts[0]
    return VariantResult(
        scenario=scenario,
        variant=name,
        cases=cases,
        metrics=metric_values(metrics, cases),
        usage=_total(c.usage for c in cases),
        identity=dict(first.get("identity") or {}),
        duration_s=max(float(p.get("duration_s") or 0.0) for p in parts),
        identity_hash=first.get("identity_hash"),
        judge_usage=_part_total(parts, "judge_usage"),
        retrieval_usage=_part_total(parts, "retrieval_usage"),
    )


def _union(parts: Sequence[Mapping[str, Any]]) -> tuple[CaseResult, ...]:
    """Every shard's cases, back in their places among all the cases."""
    records = [record for part in parts for record in part.get("cases") or ()]
    records.sort(key=lambda r: r.get("position") or 0)
    return tuple(case_from_json(record, placed=False) for record in records)


def metric_values(
    metrics: Mapping[str, tuple["Metric", Mapping[str, Any]]], cases: Sequence[CaseResult]
) -> dict[str, MetricValue]:
    """Each metric's value and interval over the cases, as the runner aggregates them."""
    from ..metric._values import aggregate

    values: dict[str, MetricValue] = {}
    for key, (metric, args) in metrics.items():
        found = aggregate(metric, args, key, cases)
        if found is not None:
            i = found.interval
            values[key] = MetricValue(i.value, found.n, found.ci, i.se, i.method, i.clusters, metric.higher_is_better)
    return values


def _total(usages: Any) -> Usage:
    total = Usage()
    for usage in usages:
        total = total + usage
    return total


def _part_total(parts: Sequence[Mapping[str, Any]], key: str) -> Usage | None:
    """The sum of a usage the shards report per variant (None when none does)."""
    found = [usage_from_json(p[key]) for p in parts if p.get(key)]
    return _total(found) if found else None

"""Results read back from their JSON form (the inverse of ``to_json``), so statistics can
be recomputed from a results file without running anything (``llmopt merge``)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from .results import CaseResult, Usage, VariantResult

__all__ = ["case_from_json", "usage_from_json", "variant_from_json"]

_USAGE_FIELDS = frozenset(f.name for f in fields(Usage))


def usage_from_json(data: Mapping[str, Any] | None) -> Usage:
    """A usage record; keys this version does not know are left out."""
    return Usage(**{k: v for k, v in (data or {}).items() if k in _USAGE_FIELDS})


def _outputs(record: Mapping[str, Any]) -> tuple[str, ...]:
    if "outputs" in record:
        return tuple(str(o) for o in record["outputs"])
    return () if record.get("output") is None else (str(record["output"]),)


def _latencies(record: Mapping[str, Any], count: int) -> tuple[float, ...]:
    """Each generation's latency (the mean of an older file, repeated)."""
    if "latencies_s" in record:
        return tuple(map(float, record["latencies_s"]))
    mean = record.get("latency_s")
    return () if mean is None or not count else (float(mean),) * count


def case_from_json(record: Mapping[str, Any], *, placed: bool = True) -> CaseResult:
    """A case of a results JSON as the runner made it (without its shard position
    unless ``placed``)."""
    outputs = _outputs(record)
    relevant = record.get("relevant")
    return CaseResult(
        id=str(record["id"]),
        input=record.get("input") or "",
        expected=record.get("expected"),
        outputs=outputs,
        latencies_s=_latencies(record, len(outputs)),
        scores=dict(record.get("scores") or {}),
        error=record.get("error"),
        cached=int(record.get("cached") or 0),
        retrieved=tuple(dict(r) for r in record.get("retrieved") or ()),
        relevant=tuple(str(r) for r in relevant) if relevant is not None else None,
        usage=usage_from_json(record.get("usage")),
        served=dict(record.get("served") or {}),
        judges={str(k): dict(v) for k, v in (record.get("judges") or {}).items()},
        recipe=dict(record["recipe"]) if record.get("recipe") is not None else None,
        prompt_hash=record.get("prompt_hash"),
        consistency=record.get("consistency"),
        cluster=record.get("cluster"),
        position=record.get("position") if placed else None,
    )


def variant_from_json(scenario: str, name: str, data: Mapping[str, Any]) -> VariantResult:
    """A variant of a results JSON, with the metric values it was written with (a
    merge recomputes them from the cases)."""
    from .results import MetricValue

    metrics = {
        key: MetricValue(
            m["value"], m["n"], tuple(m["ci"]) if m.get("ci") else None, m.get("se"), m.get("method"),
            m.get("clusters"), m.get("higher_is_better", True),
        )
        for key, m in (data.get("metrics") or {}).items()
    }
    optional = {part: usage_from_json(data[part]) for part in ("judge_usage", "retrieval_usage", "demos_usage") if data.get(part)}
    return VariantResult(
        scenario=scenario,
        variant=name,
        cases=tuple(case_from_json(c) for c in data.get("cases") or ()),
        metrics=metrics,
        usage=usage_from_json(data.get("usage")),
        identity=dict(data.get("identity") or {}),
        duration_s=float(data.get("duration_s") or 0.0),
        identity_hash=data.get("identity_hash"),
        demos=dict(data["demos"]) if data.get("demos") else None,
        **optional,
    )

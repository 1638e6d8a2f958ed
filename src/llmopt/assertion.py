"""Checking assertions against variant results: thresholds and paired deltas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from .errors import LLMOptError
from .runner import aggregate_prepared, prepared
from .stats import Interval, bootstrap_mean, paired_bootstrap

if TYPE_CHECKING:
    from .metric import Metric
    from .results import CaseResult, VariantResult
    from .spec import AssertionSpec


class EvaluationError(LLMOptError):
    """A variant could not be measured well enough to check an assertion."""


@dataclass(frozen=True)
class WorstCase:
    """One row of the side-by-side table a failing assertion shows."""

    id: str
    input: str
    expected: object
    output: str | None
    score: float | None
    other_output: str | None = None
    other_score: float | None = None
    #: Retrieved document ids, best first (shown in place of a retrieval-only variant's output).
    retrieved: tuple[str, ...] = ()
    other_retrieved: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The result of checking one assertion."""

    passed: bool
    observed: float | None
    expected: str
    delta: float | None = None
    interval: Interval | None = None
    n: int = 0
    worst: tuple[WorstCase, ...] = ()


def _num(value: float) -> str:
    return f"{value:.4g}"


def item_name(a: "AssertionSpec") -> str:
    """The readable pytest name of an assertion item, e.g. ``exact_match>=0.8``."""
    if a.vs is not None:
        delta = a.min_delta or 0.0
        sign = "+" if delta >= 0 else "-"
        return f"{a.metric_key}>={a.vs}{sign}{_num(abs(delta))}" if delta else f"{a.metric_key}>={a.vs}"
    if a.min is not None and a.max is not None:
        return f"{_num(a.min)}<={a.metric_key}<={_num(a.max)}"
    if a.min is not None:
        return f"{a.metric_key}>={_num(a.min)}"
    return f"{a.metric_key}<={_num(a.max or 0.0)}"


def check_errors(a: "AssertionSpec", results: Sequence["VariantResult"]) -> None:
    """Raise EvaluationError when a variant's error rate exceeds ``max_error_rate``."""
    for result in results:
        if result.n and result.error_rate > a.max_error_rate:
            raise EvaluationError(_error_report(result, a.max_error_rate))
        if result.n == 0:
            raise EvaluationError(f"variant {result.variant!r} has no cases")


def _error_report(result: "VariantResult", allowed: float) -> str:
    failed = [c for c in result.cases if c.error is not None]
    lines = [
        f"{len(failed)} of {result.n} cases of variant {result.variant!r} failed "
        f"({result.error_rate:.0%}; max_error_rate {allowed:.0%}):"
    ]
    lines += [f"  case {c.id}: {c.error}" for c in failed[:5]]
    if len(failed) > 5:
        lines.append(f"  ... and {len(failed) - 5} more")
    return "\n".join(lines)


def check(
    a: "AssertionSpec", metric: "Metric", results: Mapping[str, "VariantResult"], worst: int = 3
) -> Verdict:
    """Check ``a`` against the results of its variant (and of its ``vs`` variant)."""
    if a.vs is not None:
        return _check_delta(a, metric, results[a.variant], results[a.vs], worst)
    return _check_threshold(a, metric, results[a.variant], worst)


def _check_threshold(a: "AssertionSpec", metric: "Metric", result: "VariantResult", worst: int) -> Verdict:
    value = result.metrics.get(a.metric_key)
    if value is None:
        raise EvaluationError(f"metric {a.metric_key!r} has no value for variant {result.variant!r}: every case failed")
    ok = (a.min is None or value.value >= a.min) and (a.max is None or value.value <= a.max)
    expected = " and ".join(
        part for part in (a.min is not None and f">= {_num(a.min)}", a.max is not None and f"<= {_num(a.max)}") if part
    )
    interval = Interval(value.value, *value.ci) if value.ci else None
    rows = _worst_single(result, a.metric_key, metric.higher_is_better, worst)
    return Verdict(ok, value.value, expected, interval=interval, n=value.n, worst=rows)


def _check_delta(
    a: "AssertionSpec", metric: "Metric", result: "VariantResult", other: "VariantResult", worst: int
) -> Verdict:
    _check_same_engine(result, other)
    pairs = _pairs(result, other, a.metric_key)
    if not pairs:
        raise EvaluationError(
            f"variants {result.variant!r} and {other.variant!r} share no case without errors: no paired delta"
        )

    interval, observed = _paired_delta(a, metric, pairs)
    wanted = a.min_delta or 0.0
    gain = interval.value if metric.higher_is_better else -interval.value
    ok = gain >= wanted
    relation = ">=" if metric.higher_is_better else "<="
    sign = "+" if metric.higher_is_better else "-"
    expected = f"{relation} {a.vs} {sign} {_num(wanted)}" if wanted else f"{relation} {a.vs}"
    rows = _worst_paired(pairs, a.metric_key, metric.higher_is_better, worst)
    return Verdict(ok, observed, expected, delta=interval.value, interval=interval, n=len(pairs), worst=rows)


def check_comparable(a: "AssertionSpec", results: Mapping[str, "VariantResult"]) -> None:
    """Raise EvaluationError when a delta would compare a fine-tuned model with a base
    run on another engine or precision (checked before the assertion itself)."""
    if a.vs is not None and a.variant in results and a.vs in results:
        _check_same_engine(results[a.variant], results[a.vs])


def _check_same_engine(result: "VariantResult", other: "VariantResult") -> None:
    """Refuse to credit fine-tuning with what a change of engine or precision did:
    when either variant runs an adapter, both must run on one engine and precision."""
    mine, theirs = result.identity.get("served") or {}, other.identity.get("served") or {}
    if not (mine.get("adapter") or theirs.get("adapter")) or not (mine and theirs):
        return
    if (mine.get("engine"), mine.get("precision")) != (theirs.get("engine"), theirs.get("precision")):
        raise EvaluationError(
            f"refusing the delta {result.variant!r} vs {other.variant!r}: they run on different engines "
            f"or precisions ({_served_text(mine)} vs {_served_text(theirs)}); a fine-tuned model is "
            "compared with its base on the same engine and precision"
        )


def _served_text(served: Mapping[str, object]) -> str:
    adapter = f" + {served['adapter']}" if served.get("adapter") else ""
    return f"{served.get('engine')} {served.get('precision')}{adapter}"


def _paired_delta(
    a: "AssertionSpec", metric: "Metric", pairs: Sequence[tuple["CaseResult", "CaseResult"]]
) -> tuple[Interval, float]:
    """The paired bootstrap interval of the delta, and the variant's own value."""
    from .metric import is_mean_aggregate

    key = a.metric_key
    if is_mean_aggregate(metric):
        interval = bootstrap_mean([x.scores[key] - y.scores[key] for x, y in pairs])
        observed = sum(x.scores[key] for x, _ in pairs) / len(pairs)
    else:
        mine, theirs = prepared([x for x, _ in pairs], key), prepared([y for _, y in pairs], key)
        interval = paired_bootstrap(list(zip(mine, theirs)), lambda g: aggregate_prepared(metric, a.args, g))
        observed = aggregate_prepared(metric, a.args, mine)
    assert interval is not None
    return interval, observed


def _pairs(result: "VariantResult", other: "VariantResult", key: str) -> list[tuple["CaseResult", "CaseResult"]]:
    mine = {c.id: c for c in result.cases if c.error is None and key in c.scores}
    return [(mine[c.id], c) for c in other.cases if c.id in mine and c.error is None and key in c.scores]


def _worst_single(result: "VariantResult", key: str, higher: bool, count: int) -> tuple[WorstCase, ...]:
    scored = [c for c in result.cases if c.error is None and key in c.scores]
    scored.sort(key=lambda c: c.scores[key] if higher else -c.scores[key])
    return tuple(
        WorstCase(c.id, c.input, c.expected, c.output, c.scores[key], retrieved=c.retrieved_documents)
        for c in scored[:count]
    )


def _worst_paired(
    pairs: Sequence[tuple["CaseResult", "CaseResult"]], key: str, higher: bool, count: int
) -> tuple[WorstCase, ...]:
    def harm(pair: tuple["CaseResult", "CaseResult"]) -> float:
        d = pair[0].scores[key] - pair[1].scores[key]
        return d if higher else -d

    ranked = sorted((p for p in pairs if harm(p) <= 0), key=harm)
    return tuple(
        WorstCase(
            a.id, a.input, a.expected, a.output, a.scores[key], b.output, b.scores[key],
            a.retrieved_documents, b.retrieved_documents,
        )
        for a, b in ranked[:count]
    )

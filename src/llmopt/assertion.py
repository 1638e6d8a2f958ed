"""Checking assertions against variant results: thresholds, paired deltas,
non-inferiority and regressions against a stored baseline.

Every verdict carries its statistics (interval, test, p-value, power), whether or not
the assertion gates on them: with ``confidence`` the interval decides, without it the
point estimate does, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .errors import LLMOptError
from .metric._values import aggregate_prepared, prepared
from .stats import Interval, Paired, Power, holm, holm_level, margin_passes, power, superiority_passes

if TYPE_CHECKING:
    from .baseline import StoredVariant
    from .engine.results import CaseResult, VariantResult
    from .metric import Metric
    from .spec import AssertionSpec, Scenario

#: The level of the intervals reported when an assertion asks no confidence.
REPORTED_CONFIDENCE = 0.95


class EvaluationError(LLMOptError):
    """A variant could not be measured well enough to check an assertion."""


class GateWarning(UserWarning):
    """A confident gate that cannot pass at its number of cases, whatever happens."""


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
    #: Retrieved document ids with scores, best first (a column of the table; in place
    #: of the output for a retrieval-only variant).
    retrieved: tuple[str, ...] = ()
    other_retrieved: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    """Holm's correction: the p-values of the scenario's confident delta assertions,
    and where this assertion's is among them."""

    p_values: tuple[float | None, ...]
    index: int


@dataclass(frozen=True)
class Verdict:
    """The result of checking one assertion, with its statistics."""

    passed: bool
    observed: float | None
    expected: str
    delta: float | None = None
    interval: Interval | None = None
    n: int = 0
    worst: tuple[WorstCase, ...] = ()
    kind: str = "threshold"
    confidence: float | None = None
    test: str | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    power: Power | None = None
    #: For a regression: {"path", "identity_hash", "changed": [...]}.
    baseline: Mapping[str, Any] | None = None

    def stats_json(self) -> dict[str, Any]:
        """The statistics fields of the assertion in the results JSON."""
        ci = self.interval
        data: dict[str, Any] = {
            "kind": self.kind,
            "ci": [ci.low, ci.high] if ci is not None and ci.low is not None else None,
            "ci_level": ci.confidence if ci is not None else None,
            "confidence": self.confidence,
            "test": self.test,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "n": self.n,
        }
        if self.power is not None:
            found = self.power
            data |= {"mde": found.mde, "margin": found.margin, "underpowered": found.underpowered, "needed_n": found.needed_n}
        if self.baseline is not None:
            data["baseline"] = dict(self.baseline)
        return data


def _num(value: float) -> str:
    return f"{value:.4g}"


def item_name(a: "AssertionSpec") -> str:
    """The readable pytest name of an assertion item, e.g. ``exact_match>=0.8``."""
    if a.regression is not None:
        drop = a.regression.max_drop
        return f"{a.metric_key}>=stored-{_num(drop)}" if drop else f"{a.metric_key}>=stored"
    if a.vs is not None:
        delta = -a.max_drop if a.max_drop is not None else a.min_delta or 0.0
        sign = "+" if delta >= 0 else "-"
        return f"{a.metric_key}>={a.vs}{sign}{_num(abs(delta))}" if delta else f"{a.metric_key}>={a.vs}"
    if a.min is not None and a.max is not None:
        return f"{_num(a.min)}<={a.metric_key}<={_num(a.max)}"
    if a.min is not None:
        return f"{a.metric_key}>={_num(a.min)}"
    return f"{a.metric_key}<={_num(a.max or 0.0)}"


def variant_items(assertions: Sequence["AssertionSpec"], variant: str) -> list[tuple["AssertionSpec", str]]:
    """The assertions on ``variant`` with their item names, a repeated name numbered
    (``exact_match>=0.8[2]``): the last part of each pytest node id. A search's
    confirmation is named ``confirm:<its name>``."""
    seen: dict[str, int] = {}
    found: list[tuple["AssertionSpec", str]] = []
    for a in assertions:
        if a.variant != variant:
            continue
        name = ("confirm:" if a.role == "confirmation" else "") + item_name(a)
        seen[name] = seen.get(name, 0) + 1
        found.append((a, name if seen[name] == 1 else f"{name}[{seen[name]}]"))
    return found


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
    lines += [f"  {_case_line(c.id, c.error or '')}" for c in failed[:5]]
    if len(failed) > 5:
        lines.append(f"  ... and {len(failed) - 5} more")
    return "\n".join(lines)


def _case_line(case_id: str, error: str) -> str:
    """A failed case's line: its error, after its id unless the error names it."""
    return error if f"case {case_id!r}" in error else f"case {case_id}: {error}"


def check(
    a: "AssertionSpec",
    metric: "Metric",
    results: Mapping[str, "VariantResult"],
    worst: int = 3,
    *,
    family: Family | None = None,
    stored: "StoredVariant | None" = None,
) -> Verdict:
    """Check ``a`` against the results of its variant (and of its ``vs`` variant, or
    its stored baseline); ``family`` applies Holm's correction to a delta."""
    if a.regression is not None:
        if stored is None:
            raise EvaluationError(f"no stored baseline was given for the regression check of {a.variant!r}")
        return _check_regression(a, metric, results[a.variant], stored, worst)
    if a.vs is not None:
        return _check_delta(a, metric, results[a.variant], results[a.vs], worst, family)
    return _check_threshold(a, metric, results[a.variant], worst)


# -- thresholds ---------------------------------------------------------------------


def _check_threshold(a: "AssertionSpec", metric: "Metric", result: "VariantResult", worst: int) -> Verdict:
    value = result.metrics.get(a.metric_key)
    if value is None:
        raise EvaluationError(f"metric {a.metric_key!r} has no value for variant {result.variant!r}: every case failed")
    interval = _value_interval(a, metric, result)
    low, high = (interval.low, interval.high) if a.confidence is not None else (value.value, value.value)
    ok = (a.min is None or (low is not None and low >= a.min)) and (a.max is None or (high is not None and high <= a.max))
    expected = " and ".join(
        part for part in (a.min is not None and f">= {_num(a.min)}", a.max is not None and f"<= {_num(a.max)}") if part
    )
    rows = _worst_single(result, a.metric_key, metric.higher_is_better, worst)
    return Verdict(
        ok, value.value, _at(expected, a.confidence), interval=interval, n=value.n, worst=rows,
        confidence=a.confidence,
    )


def _value_interval(a: "AssertionSpec", metric: "Metric", result: "VariantResult") -> Interval:
    """The interval of the variant's value at the assertion's confidence (95% stored)."""
    from .metric import is_mean_aggregate
    from .stats import bootstrap_interval, mean_interval

    value = result.metrics[a.metric_key]
    level = a.confidence or REPORTED_CONFIDENCE
    if level == REPORTED_CONFIDENCE:
        low, high = value.ci if value.ci else (None, None)
        return Interval(value.value, low, high, value.se, value.n, value.method or "", level, value.clusters)
    scored = [c for c in result.cases if c.error is None and a.metric_key in c.scores]
    clusters = _clusters(scored)
    if is_mean_aggregate(metric):
        return mean_interval([c.scores[a.metric_key] for c in scored], level, clusters)
    groups = prepared(scored, a.metric_key)
    return bootstrap_interval(groups, lambda g: aggregate_prepared(metric, a.args, g), level, clusters)


def _at(expected: str, confidence: float | None) -> str:
    return f"{expected} at {confidence:.0%} confidence" if confidence is not None else expected


# -- deltas against another variant -------------------------------------------------


def _check_delta(
    a: "AssertionSpec",
    metric: "Metric",
    result: "VariantResult",
    other: "VariantResult",
    worst: int,
    family: Family | None,
) -> Verdict:
    _check_same_engine(result, other)
    pairs = _pairs(result, other, a.metric_key)
    if not pairs:
        raise EvaluationError(
            f"variants {result.variant!r} and {other.variant!r} share no case without errors: no paired delta"
        )
    level = a.confidence or REPORTED_CONFIDENCE
    reported, observed = paired_statistics(a, metric, pairs, level)
    gated, p_adjusted = reported, None
    if family is not None and a.kind == "delta" and a.confidence is not None:
        p_adjusted = holm(family.p_values)[family.index]
        gated, _ = paired_statistics(a, metric, pairs, holm_level(family.p_values, family.index, a.confidence))
    ok = _decide(a, metric.higher_is_better, gated, p_adjusted)
    rows = _worst_paired(pairs, a.metric_key, metric.higher_is_better, worst)
    return _paired_verdict(a, ok, observed, reported, gated, p_adjusted, _expected_delta(a, metric), rows)


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
    found = served.get("adapter")
    name = found.get("name") if isinstance(found, Mapping) else found
    adapter = f" + {name}" if name else ""
    return f"{served.get('engine')} {served.get('precision')}{adapter}"


def delta_p_value(a: "AssertionSpec", metric: "Metric", results: Mapping[str, "VariantResult"]) -> float | None:
    """The p-value of no difference for a delta assertion (for Holm's family)."""
    assert a.vs is not None
    pairs = _pairs(results[a.variant], results[a.vs], a.metric_key)
    return paired_statistics(a, metric, pairs, REPORTED_CONFIDENCE)[0].p_value if pairs else None


def paired_statistics(
    a: "AssertionSpec", metric: "Metric", pairs: Sequence[tuple["CaseResult", "CaseResult"]], confidence: float
) -> tuple[Paired, float]:
    """The paired comparison of the delta at ``confidence``, and the variant's own value."""
    from .metric import is_mean_aggregate
    from .stats import paired_bootstrap, paired_means

    key = a.metric_key
    clusters = _clusters([x for x, _ in pairs])
    if is_mean_aggregate(metric):
        mine, theirs = [x.scores[key] for x, _ in pairs], [y.scores[key] for _, y in pairs]
        return paired_means(mine, theirs, confidence, clusters), sum(mine) / len(mine)
    left, right = prepared([x for x, _ in pairs], key), prepared([y for _, y in pairs], key)

    def delta(idx: list[int]) -> float:
        picked = [left[i] for i in idx], [right[i] for i in idx]
        return aggregate_prepared(metric, a.args, picked[0]) - aggregate_prepared(metric, a.args, picked[1])

    return paired_bootstrap(delta, len(pairs), confidence, clusters), aggregate_prepared(metric, a.args, left)


def _decide(a: "AssertionSpec", higher: bool, paired: Paired, p_adjusted: float | None) -> bool:
    """Pass or fail on the gain (the delta oriented so that positive is better)."""
    gain = paired.delta if higher else -paired.delta
    gain_low = paired.low if higher else (None if paired.high is None else -paired.high)
    confidence = a.gate_confidence
    margin = a.regression.max_drop if a.regression is not None else a.max_drop
    if margin is not None:
        if confidence is None:
            return gain >= -margin
        return gain_low is not None and bool(margin_passes(gain_low, margin))
    wanted = a.min_delta or 0.0
    if confidence is None:
        return gain >= wanted
    p = p_adjusted if p_adjusted is not None else paired.p_value
    return gain_low is not None and p is not None and bool(superiority_passes(gain_low, p, wanted, 1 - confidence))


def _expected_delta(a: "AssertionSpec", metric: "Metric", against: str | None = None) -> str:
    other = against or a.vs
    relation = ">=" if metric.higher_is_better else "<="
    if a.max_drop is not None or a.regression is not None:
        drop = a.regression.max_drop if a.regression is not None else a.max_drop or 0.0
        sign = "-" if metric.higher_is_better else "+"
        text = f"{relation} {other} {sign} {_num(drop)}" if drop else f"{relation} {other}"
    else:
        wanted = a.min_delta or 0.0
        sign = "+" if metric.higher_is_better else "-"
        text = f"{relation} {other} {sign} {_num(wanted)}" if wanted else f"{relation} {other}"
    return _at(text, a.gate_confidence)


def _paired_verdict(
    a: "AssertionSpec",
    ok: bool,
    observed: float,
    reported: Paired,
    gated: Paired,
    p_adjusted: float | None,
    expected: str,
    rows: tuple[WorstCase, ...],
    baseline: Mapping[str, Any] | None = None,
) -> Verdict:
    margin = a.regression.max_drop if a.regression is not None else a.max_drop
    margin = margin if margin is not None else a.min_delta or 0.0
    level = a.gate_confidence or REPORTED_CONFIDENCE
    interval = Interval(gated.delta, gated.low, gated.high, gated.se, gated.n, gated.test, gated.confidence)
    return Verdict(
        ok, observed, expected, delta=reported.delta, interval=interval, n=reported.n, worst=rows,
        kind=a.kind, confidence=a.gate_confidence, test=reported.test, p_value=reported.p_value,
        p_adjusted=p_adjusted, power=power(reported.se, reported.n, level, margin), baseline=baseline,
    )


# -- regressions against the stored baseline ----------------------------------------


def _check_regression(
    a: "AssertionSpec", metric: "Metric", result: "VariantResult", stored: "StoredVariant", worst: int
) -> Verdict:
    from .metric import is_mean_aggregate
    from .stats import paired_means

    if not is_mean_aggregate(metric):
        raise EvaluationError(
            f"regression needs a metric whose value is the mean of its case scores; {a.metric_key!r} is aggregated "
            "otherwise, and a stored baseline keeps case scores only"
        )
    key = a.metric_key
    mine = {c.id: c for c in result.cases if c.error is None and key in c.scores}
    ids = [case_id for case_id in mine if key in stored.scores.get(case_id, {})]
    if not ids:
        raise EvaluationError(f"variant {result.variant!r} shares no scored case with its stored baseline ({stored.path})")
    level = a.gate_confidence or REPORTED_CONFIDENCE
    now, then = [mine[i].scores[key] for i in ids], [stored.scores[i][key] for i in ids]
    paired = paired_means(now, then, level, _clusters([mine[i] for i in ids]))
    ok = _decide(a, metric.higher_is_better, paired, None)
    rows = _worst_stored([mine[i] for i in ids], then, key, metric.higher_is_better, worst)
    info = {"path": stored.path, "identity_hash": stored.identity_hash, "changed": list(stored.changed)}
    expected = _expected_delta(a, metric, "stored")
    return _paired_verdict(a, ok, sum(now) / len(now), paired, paired, None, expected, rows, info)


def _worst_stored(
    cases: Sequence["CaseResult"], then: Sequence[float], key: str, higher: bool, count: int
) -> tuple[WorstCase, ...]:
    harmed = [(c, old) for c, old in zip(cases, then, strict=True) if (c.scores[key] < old if higher else c.scores[key] > old)]
    harmed.sort(key=lambda pair: (pair[0].scores[key] - pair[1]) * (1 if higher else -1))
    return tuple(
        WorstCase(c.id, c.input, c.expected, c.output, c.scores[key], "(stored)", old, c.retrieved_documents)
        for c, old in harmed[:count]
    )


# -- gates that cannot pass (checked at collection) ----------------------------------


def gate_warnings(scenario: "Scenario", metrics: Mapping[str, "Metric"]) -> list[str]:
    """One message per confident non-inferiority or regression gate that cannot pass
    at its number of cases even when nothing changed (identical scores)."""
    counts: dict[str, int | None] = {}
    found: list[str] = []
    for a in scenario.assertions:
        if _margin_gate(a, metrics) is None:
            continue
        if a.variant not in counts:
            counts[a.variant] = _case_count(scenario, a.variant)
        n = counts[a.variant]
        message = unpassable_gate(a, n) if n is not None else None
        if message is not None:
            found.append(message)
    return found


def _margin_gate(a: "AssertionSpec", metrics: Mapping[str, "Metric"]) -> float | None:
    """The margin of a confident gate on a mean-aggregated metric that identical
    scores could pass; None for any other assertion."""
    from .metric import is_mean_aggregate

    margin = a.regression.max_drop if a.regression is not None else a.max_drop
    metric = metrics.get(a.metric)
    if margin is None or a.gate_confidence is None or metric is None or not is_mean_aggregate(metric):
        return None
    return margin


def unpassable_gate(a: "AssertionSpec", n: int) -> str | None:
    """Why the margin gate ``a`` cannot pass at ``n`` cases when nothing changed, or None
    when it can: on identical 0/1 (or [0, 1]) scores the interval of the delta reaches
    ``-z / (n + 2)``, which must not fall below ``-max_drop``."""
    from .stats import unchanged_gain_low, unchanged_margin_n

    margin = a.regression.max_drop if a.regression is not None else a.max_drop
    level = a.gate_confidence
    if margin is None or level is None or unchanged_gain_low(n, level) >= -margin:
        return None
    needed = unchanged_margin_n(margin, level)
    what = "regression" if a.regression is not None else f"non-inferiority vs {a.vs}"
    where = f"{a.location}: " if a.location is not None else ""
    cure = f"about {needed} cases are needed" if needed is not None else "a max_drop above 0 is needed"
    return (
        f"{where}assertions[{a.index}] {item_name(a)} on {a.variant}: this {what} gate cannot pass at n={n} "
        f"even if nothing changes: with identical scores its {level:.0%} interval of the delta reaches "
        f"{unchanged_gain_low(n, level):+.3f}, below -{_num(margin)}; {cure} "
        "(or a larger max_drop, or a lower confidence)"
    )


def _case_count(scenario: "Scenario", variant: str) -> int | None:
    """How many cases ``variant`` evaluates (None when its dataset cannot be read now:
    the run reports that)."""
    from .dataset import load_cases

    try:
        return len(load_cases(scenario.variants[variant].task, scenario.path))
    except (LLMOptError, OSError, ValueError, KeyError):
        return None


# -- shared -------------------------------------------------------------------------


def _clusters(cases: Sequence["CaseResult"]) -> list[object] | None:
    return [c.cluster for c in cases] if cases and cases[0].cluster is not None else None


def _pairs(result: "VariantResult", other: "VariantResult", key: str) -> list[tuple["CaseResult", "CaseResult"]]:
    mine = {c.id: c for c in result.cases if c.error is None and key in c.scores}
    return [(mine[c.id], c) for c in other.cases if c.id in mine and c.error is None and key in c.scores]


def _worst_single(result: "VariantResult", key: str, higher: bool, count: int) -> tuple[WorstCase, ...]:
    scored = [c for c in result.cases if c.error is None and key in c.scores]
    scored.sort(key=lambda c: c.scores[key] if higher else -c.scores[key])
    return tuple(
        WorstCase(c.id, c.input, c.expected, c.output, c.scores[key], retrieved=c.retrieved_summary)
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
            a.retrieved_summary, b.retrieved_summary,
        )
        for a, b in ranked[:count]
    )


def holm_family(
    scenario: "Scenario",
    assertion: "AssertionSpec",
    metrics: Mapping[str, "Metric"],
    evaluate: Callable[[str], "VariantResult"],
) -> Family | None:
    """Holm's family of a confident delta assertion (``correction: holm``), else None.

    ``evaluate`` gives a variant's result; a member whose variants cannot be evaluated
    counts with p = 1."""
    if scenario.correction != "holm" or assertion.kind != "delta" or assertion.confidence is None:
        return None
    members = [b for b in scenario.assertions if b.kind == "delta" and b.confidence is not None]
    return Family(tuple(_member_p_value(b, metrics, evaluate) for b in members), members.index(assertion))


def _member_p_value(
    a: "AssertionSpec", metrics: Mapping[str, "Metric"], evaluate: Callable[[str], "VariantResult"]
) -> float | None:
    try:
        results = {name: evaluate(name) for name in (a.variant, a.vs or "")}
        return delta_p_value(a, metrics[a.metric], results)
    except LLMOptError:
        return None

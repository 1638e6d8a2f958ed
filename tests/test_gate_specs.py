"""The spec keys of honest gates, baselines files and repeat reducers, without a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from llmopt.assertion import item_name
from llmopt.baseline import (
    BaselineMissing,
    StoredVariant,
    baseline_doc,
    compare_identity,
    render,
    stored_variant,
)
from llmopt.spec import load_scenario
from llmopt.stats import consistency, reduce_scores

if TYPE_CHECKING:
    from llmopt.engine.results import VariantResult

SPEC = Path(__file__).resolve().parent / "specs" / "valid" / "honest_gates.yaml"


def test_gate_keys_are_loaded_into_frozen_specs() -> None:
    scenario = load_scenario(SPEC)
    assert scenario.correction == "holm" and scenario.strict_identity
    tuned, baseline = scenario.variants["tuned"].task, scenario.variants["baseline"].task
    assert (tuned.repeat, tuned.reduce, tuned.cluster_field) == (3, "pass_at_k", "doc")
    assert baseline.reduce == "majority"
    delta, drop, regression, threshold = scenario.assertions
    assert (delta.kind, delta.confidence, delta.min_delta, delta.gate_confidence) == ("delta", 0.95, 0.1, 0.95)
    assert (drop.kind, drop.max_drop, drop.min_delta, drop.confidence) == ("non_inferiority", 0.02, None, 0.9)
    assert regression.kind == "regression" and regression.regression is not None
    assert (regression.regression.max_drop, regression.gate_confidence, regression.regression.strict_identity) == (
        0.05, 0.95, True,
    )
    assert (threshold.kind, threshold.confidence) == ("threshold", 0.95)


def test_item_names_of_each_kind() -> None:
    names = [item_name(a) for a in load_scenario(SPEC).assertions]
    assert names == ["exact_match>=baseline+0.1", "exact_match>=tuned-0.02", "exact_match>=stored-0.05", "exact_match>=0.5"]


@pytest.mark.parametrize(
    ("how", "expected"), [("mean", 0.5), ("majority", 0.0), ("pass_at_k", 1.0), ("pass_all_k", 0.0)]
)
def test_reducers(how: str, expected: float) -> None:
    assert reduce_scores([1.0, 0.0, 0.0, 1.0], how) == expected


def test_majority_takes_the_most_common_score() -> None:
    assert reduce_scores([1.0, 1.0, 0.0], "majority") == 1.0


def test_consistency_compares_pass_fail_verdicts_on_every_metric() -> None:
    assert consistency({"a": [1.0, 1.0, 1.0], "b": [1.0, 0.0, 1.0]}) == pytest.approx(2 / 3)
    # latency differs on every call: not a sign of a flaky case
    assert consistency({"a": [1.0, 1.0, 1.0], "latency": [0.31, 0.29, 0.4]}) == 1.0


def test_consistency_without_pass_fail_metrics_compares_outputs() -> None:
    assert consistency({"f1": [0.5, 0.7, 0.5]}, ["Paris", "paris, France", " Paris"]) == pytest.approx(2 / 3)


def _results_variant(scores: dict[str, float], model: str = "m1") -> dict:
    cases = [{"id": k, "scores": {"exact_match": v}, "error": None} for k, v in scores.items()]
    cases.append({"id": "broken", "scores": {}, "error": "timeout"})
    return {
        "n": len(cases), "errors": 1, "identity": {"model": model, "metrics": {"exact_match": {"args": {}}}},
        "identity_hash": "sha256:x", "metrics": {"exact_match": {"value": 2 / 3, "n": 3, "ci": [0.1, 0.9]}},
        "cases": cases,
    }


def test_baseline_text_is_sorted_rounded_and_keeps_unmeasured_variants() -> None:
    existing = {"variants": {"old": {"cases": {}}, "rag": {"cases": {"gone": {}}}}}
    scenario = {"scenario": "s", "variants": {"rag": _results_variant({"b": 1.0, "a": 1 / 3})}}
    text = render(baseline_doc(scenario, "s.yaml", existing))
    doc = json.loads(text)
    assert sorted(doc["variants"]) == ["old", "rag"]
    assert doc["variants"]["rag"]["cases"] == {"a": {"exact_match": 0.333333}, "b": {"exact_match": 1.0}}
    assert text.index('"a"') < text.index('"b"') and "0.6666666" not in text


def test_missing_baseline_variant_and_metric_name_the_command() -> None:
    command = "pytest specs/s.yaml --llmopt-update-baseline"
    with pytest.raises(BaselineMissing, match="does not exist; create it with: pytest specs/s.yaml"):
        stored_variant(None, "rag", "exact_match", "specs/baselines/s.json", command)
    doc = {"variants": {"rag": {"metrics": {"contains": {}}, "cases": {}}}}
    with pytest.raises(BaselineMissing, match="has no variant 'tuned'"):
        stored_variant(doc, "tuned", "exact_match", "b.json", command)
    with pytest.raises(BaselineMissing, match="has no metric 'exact_match' for variant 'rag'"):
        stored_variant(doc, "rag", "exact_match", "b.json", command)


def test_identity_comparison_ignores_added_metrics_but_not_changed_args() -> None:
    stored = StoredVariant("b.json", {"model": "m", "metrics": {"exact_match": {"args": {}}}}, None, {})
    grown = {"model": "m", "metrics": {"exact_match": {"args": {}}, "contains": {"args": {}}}}
    assert compare_identity(stored, grown, "exact_match").changed == ()
    changed = {"model": "m", "metrics": {"exact_match": {"args": {"strict": True}}}}
    assert compare_identity(stored, changed, "exact_match").changed == (
        "metric exact_match.args.strict: none -> true",
    )


class _Seconds:
    """A lower-is-better mean metric, like a per-case latency."""

    name = "seconds"
    higher_is_better = False
    aggregate_is_mean = True


def _variant(name: str, values: list[float]) -> "VariantResult":
    from llmopt.engine.results import CaseResult, MetricValue, Usage, VariantResult

    cases = tuple(CaseResult(id=f"c{i}", scores={"seconds": v}) for i, v in enumerate(values))
    metric = MetricValue(sum(values) / len(values), len(values))
    return VariantResult("s", name, cases, {"seconds": metric}, Usage())


def test_lower_is_better_delta_gates_on_the_reduction() -> None:
    from llmopt.assertion import check
    from llmopt.spec import AssertionSpec

    rng = __import__("random").Random(3)
    slow = [2.0 + rng.random() for _ in range(30)]
    fast = [v - 0.5 + (rng.random() - 0.5) * 0.2 for v in slow]
    results = {"fast": _variant("fast", fast), "slow": _variant("slow", slow)}
    wanted = AssertionSpec(index=0, metric="seconds", variant="fast", vs="slow", min_delta=0.3, confidence=0.95)
    verdict = check(wanted, _Seconds(), results)  # type: ignore[arg-type]
    assert verdict.passed and verdict.delta == pytest.approx(-0.5, abs=0.05) and verdict.test == "paired-t"
    too_much = AssertionSpec(index=0, metric="seconds", variant="fast", vs="slow", min_delta=0.6, confidence=0.95)
    assert not check(too_much, _Seconds(), results).passed  # type: ignore[arg-type]
    worse = AssertionSpec(index=0, metric="seconds", variant="slow", vs="fast", max_drop=0.1, confidence=0.95)
    assert not check(worse, _Seconds(), results).passed  # type: ignore[arg-type]

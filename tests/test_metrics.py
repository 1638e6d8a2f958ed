"""Unit tests of the built-in metrics and the plugin-author helpers."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from typing import Any, Mapping

import pytest

from llmopt.dataset._case import Case
from llmopt.errors import MetricError
from llmopt.metric import (
    CaseMetric,
    Metric,
    Sample,
    builtin_metrics,
    case_metric,
    extract_label,
    normalize_answer,
    percentile,
    strip_json_fence,
)
from llmopt.metric._normalize import is_punctuation

NAMES = ["exact_match", "contains", "regex", "token_f1", "json_valid", "latency_p95", "cost", "accuracy", "f1_macro",
         "recall_at_k", "precision_at_k", "mrr", "ndcg_at_k", "hit_rate",
         "faithfulness", "answer_relevance", "context_relevance", "judge",
         "equals", "substring", "starts_with", "matches", "is_json", "contains_json", "within_latency", "within_cost",
         "rubric"]


@pytest.fixture
def metrics() -> dict[str, Metric]:
    return {m.name: m for m in builtin_metrics()}


def sample(output: str, expected: Any = None, latency_s: float = 0.0, case_id: str = "c") -> Sample:
    return Sample(Case(id=case_id, expected=expected), output, latency_s)


def score(metric: Metric, output: str, expected: Any = None, **args: Any) -> float:
    return metric.score(sample(output, expected), args)


def run(metric: Metric, pairs: list[tuple[str, Any]], **args: Any) -> float:
    samples = [sample(out, exp, case_id=str(i)) for i, (out, exp) in enumerate(pairs)]
    scores = [metric.score(s, args) for s in samples]
    return metric.aggregate(samples, scores, args)


# -- registry shape ---------------------------------------------------------------


def test_builtin_names_and_descriptions(metrics: dict[str, Metric]) -> None:
    assert list(metrics) == NAMES
    for metric in metrics.values():
        assert metric.description and "\n" not in metric.description
        judged = hasattr(metric, "ascore")  # judge metrics need args.judge
        assert metric.check_args({}) == [] or metric.name == "regex" or judged


def test_higher_is_better(metrics: dict[str, Metric]) -> None:
    assert [n for n, m in metrics.items() if not m.higher_is_better] == ["latency_p95", "cost"]


def test_builtin_metrics_returns_fresh_instances() -> None:
    assert builtin_metrics()[0] is not builtin_metrics()[0]


def test_import_does_not_load_sklearn() -> None:
    code = "import sys, llmopt.metric; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- normalization ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The  Eiffel Tower!", "eiffel tower"),
        ("  an apple, a pear\n", "apple pear"),
        ("“Paris”.", "paris"),
        ("theater", "theater"),
        ("A.", ""),
    ],
)
def test_normalize_answer(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


def test_normalize_answer_removes_exactly_the_characters_is_punctuation_holds() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    without = "".join(char for char in text if not is_punctuation(char))
    expected = " ".join(re.sub(r"\b(?:a|an|the)\b", " ", without, flags=re.IGNORECASE).split())
    assert normalize_answer(text, lowercase=False) == expected
    assert normalize_answer("¿Qué?” — «the» price…", lowercase=False) == "Qué price"


def test_normalize_answer_keeps_case_on_request() -> None:
    assert normalize_answer("The Eiffel Tower", lowercase=False) == "Eiffel Tower"


# -- exact_match ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected", "value"),
    [
        ("Paris", "paris", 1.0),
        ("The answer: Paris.", "Paris", 0.0),
        ("  the   Eiffel tower. ", "Eiffel Tower", 1.0),
        ("42", 42, 1.0),
        ("Lyon", ["Paris", "Lyon"], 1.0),
        ("Nice", ["Paris", "Lyon"], 0.0),
    ],
)
def test_exact_match(metrics: dict[str, Metric], output: str, expected: Any, value: float) -> None:
    assert score(metrics["exact_match"], output, expected) == value


def test_exact_match_aggregate_is_mean(metrics: dict[str, Metric]) -> None:
    assert run(metrics["exact_match"], [("a cat", "cat"), ("dog", "cat"), ("Cat!", "cat"), ("x", "y")]) == 0.5


# -- contains -------------------------------------------------------------------------


def test_contains_normalizes(metrics: dict[str, Metric]) -> None:
    assert score(metrics["contains"], "It is in PARIS, France.", "paris") == 1.0
    assert score(metrics["contains"], "It is in Lyon.", "Paris") == 0.0


def test_contains_case_sensitive(metrics: dict[str, Metric]) -> None:
    assert score(metrics["contains"], "It is in PARIS.", "Paris", case_sensitive=True) == 0.0
    assert score(metrics["contains"], "It is in Paris.", "Paris", case_sensitive=True) == 1.0


def test_contains_list_any_and_all(metrics: dict[str, Metric]) -> None:
    contains = metrics["contains"]
    assert score(contains, "red and blue", ["blue", "green"]) == 1.0
    assert score(contains, "red and blue", ["blue", "green"], all=True) == 0.0
    assert score(contains, "red, green and blue", ["blue", "green"], all=True) == 1.0


def test_contains_empty_list_is_an_error(metrics: dict[str, Metric]) -> None:
    with pytest.raises(MetricError, match="empty list"):
        score(metrics["contains"], "x", [])


# -- regex ----------------------------------------------------------------------------


def test_regex_search_and_flags(metrics: dict[str, Metric]) -> None:
    regex = metrics["regex"]
    assert score(regex, "Order #123 shipped", pattern=r"#\d+") == 1.0
    assert score(regex, "order shipped", pattern=r"^ORDER") == 0.0
    assert score(regex, "order shipped", pattern=r"^ORDER", flags="i") == 1.0
    assert score(regex, "a\nb", pattern=r"a.b", flags="s") == 1.0
    assert score(regex, "x\nend", pattern=r"^end$", flags="im") == 1.0


def test_regex_check_args(metrics: dict[str, Metric]) -> None:
    regex = metrics["regex"]
    assert regex.check_args({}) == ["metric 'regex' needs argument 'pattern'"]
    assert regex.check_args({"pattern": "a", "flags": "iq"}) == [
        "argument 'flags' of metric 'regex' has unknown flag 'q' (allowed: i, m, s, x)"
    ]
    [problem] = regex.check_args({"pattern": "(unclosed"})
    assert problem.startswith("argument 'pattern' of metric 'regex' does not compile: missing ), ")
    assert regex.check_args({"pattern": 3}) == ["argument 'pattern' of metric 'regex' must be a string, got 3"]


def test_regex_score_with_bad_args_is_a_metric_error(metrics: dict[str, Metric]) -> None:
    with pytest.raises(MetricError, match="needs argument 'pattern'"):
        score(metrics["regex"], "text")


# -- token_f1 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected", "value"),
    [
        ("the cat sat", "cat sat", 1.0),
        ("cat sat on mat", "cat sat", 2 * 0.5 * 1.0 / 1.5),
        ("dog", "cat", 0.0),
        ("the", "a", 1.0),  # both normalize to no tokens
        ("the", "cat", 0.0),
        ("cat cat", "cat", 2 * 0.5 * 1.0 / 1.5),
        ("blue whale", ["whale", "blue whale"], 1.0),
    ],
)
def test_token_f1(metrics: dict[str, Metric], output: str, expected: Any, value: float) -> None:
    assert score(metrics["token_f1"], output, expected) == pytest.approx(value)


# -- json_valid -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "value"),
    [
        ('{"a": 1}', 1.0),
        ('  \n[1, 2]\n ', 1.0),
        ('```json\n{"a": 1}\n```', 1.0),
        ('  ```JSON\n{"a": 1}\n```  ', 1.0),
        ('```\n{"a": 1}\n```', 1.0),
        ('```json {"a": 1} ```', 1.0),
        ('Here it is: {"a": 1}', 0.0),
        ("{'a': 1}", 0.0),
        ("", 0.0),
    ],
)
def test_json_valid(metrics: dict[str, Metric], output: str, value: float) -> None:
    assert score(metrics["json_valid"], output) == value


def test_json_valid_type_and_required(metrics: dict[str, Metric]) -> None:
    json_valid = metrics["json_valid"]
    assert score(json_valid, "[1]", type="object") == 0.0
    assert score(json_valid, "[1]", type="array") == 1.0
    assert score(json_valid, '{"a": 1, "b": 2}', required=["a", "b"]) == 1.0
    assert score(json_valid, '{"a": 1}', required=["a", "b"]) == 0.0
    assert score(json_valid, '["a", "b"]', required=["a"]) == 0.0


def test_json_valid_check_args(metrics: dict[str, Metric]) -> None:
    assert metrics["json_valid"].check_args({"type": "dict", "required": "a"}) == [
        "argument 'required' of metric 'json_valid' must be a list of non-empty strings, got 'a'",
        "argument 'type' of metric 'json_valid' must be 'object' or 'array', got 'dict'",
    ]


def test_strip_json_fence_leaves_other_text() -> None:
    assert strip_json_fence("  plain  ") == "plain"


# -- latency_p95 ----------------------------------------------------------------------


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile(list(range(1, 11)), 95) == pytest.approx(9.55)
    assert percentile([3.0], 95) == 3.0
    assert percentile([4.0, 1.0], 50) == 2.5
    assert math.isnan(percentile([], 95))


def test_percentile_agrees_with_numpy() -> None:
    numpy = pytest.importorskip("numpy")
    values = [0.31, 2.2, 0.05, 1.7, 0.9, 0.4, 3.3]
    assert percentile(values, 95) == pytest.approx(float(numpy.percentile(values, 95)))


def test_latency_p95(metrics: dict[str, Metric]) -> None:
    latency = metrics["latency_p95"]
    samples = [sample("x", latency_s=float(s), case_id=str(s)) for s in range(1, 21)]
    scores = [latency.score(s, {}) for s in samples]
    assert scores[:3] == [1.0, 2.0, 3.0]
    assert latency.aggregate(samples, scores, {}) == pytest.approx(19.05)


# -- accuracy / f1_macro --------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "labels", "label"),
    [
        ('"Positive."', None, "positive"),
        ("  NEGATIVE ", None, "negative"),
        ("The sentiment is: Positive!", ["positive", "negative"], "positive"),
        ("Negative, not positive.", ["positive", "negative"], "negative"),
        ("This is not spam.", ["spam", "not spam"], "not spam"),
        ("unpositive", ["positive"], "unpositive"),
        ("I cannot tell.", ["positive", "negative"], "i cannot tell"),
    ],
)
def test_extract_label(output: str, labels: list[str] | None, label: str) -> None:
    assert extract_label(output, labels) == label


def test_accuracy_per_case_and_aggregate(metrics: dict[str, Metric]) -> None:
    accuracy = metrics["accuracy"]
    assert score(accuracy, "'Spam'", "spam") == 1.0
    assert score(accuracy, "It looks like spam to me", "spam") == 0.0
    assert score(accuracy, "It looks like spam to me", "spam", labels=["spam", "ham"]) == 1.0
    pairs = [("spam", "spam"), ("Ham.", "ham"), ("ham", "spam"), ("Label: spam", "spam")]
    assert run(accuracy, pairs, labels=["spam", "ham"]) == 0.75


def test_f1_macro_against_hand_computed_value(metrics: dict[str, Metric]) -> None:
    # class a: P=1/2 R=1/2 F1=0.5; b: P=2/3 R=1 F1=0.8; c: never predicted, F1=0.
    pairs = [("a", "a"), ("b", "a"), ("b", "b"), ("B", "b"), ("a", "c")]
    f1_macro = metrics["f1_macro"]
    assert [f1_macro.score(sample(o, e), {}) for o, e in pairs] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert run(f1_macro, pairs) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_f1_macro_unmatched_output_adds_no_class(metrics: dict[str, Metric]) -> None:
    # With labels, "unsure" is wrong for its case: yes P=1 R=1/2 F1=2/3; no F1=1.
    pairs = [("yes", "yes"), ("unsure", "yes"), ("No.", "no")]
    assert run(metrics["f1_macro"], pairs, labels=["yes", "no"]) == pytest.approx((2 / 3 + 1) / 2)
    # Without labels the output "unsure" is a class of its own (F1 = 0).
    assert run(metrics["f1_macro"], pairs) == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_f1_macro_agrees_with_sklearn(metrics: dict[str, Metric]) -> None:
    from sklearn.metrics import f1_score

    truth = ["x", "y", "z", "x", "y", "z", "x"]
    preds = ["x", "z", "z", "x", "y", "x", "y"]
    expected = f1_score(truth, preds, average="macro")
    assert run(metrics["f1_macro"], list(zip(preds, truth, strict=True))) == pytest.approx(expected)


def test_labels_must_be_a_list_of_strings(metrics: dict[str, Metric]) -> None:
    for name in ("accuracy", "f1_macro"):
        assert metrics[name].check_args({"labels": "spam"}) == [
            f"argument 'labels' of metric '{name}' must be a list of non-empty strings, got 'spam'"
        ]
        assert metrics[name].check_args({"labels": ["spam", 1]}) != []
        assert metrics[name].check_args({"labels": ["spam", "ham"]}) == []


# -- check_args and expected values -----------------------------------------------------


def test_unknown_args(metrics: dict[str, Metric]) -> None:
    assert metrics["exact_match"].check_args({"casefold": True}) == [
        "unknown argument 'casefold' for metric 'exact_match' (allowed: none)"
    ]
    assert metrics["contains"].check_args({"any": True, "case_sensitive": "yes"}) == [
        "unknown argument 'any' for metric 'contains' (allowed: all, case_sensitive)",
        "argument 'case_sensitive' of metric 'contains' must be true or false, got 'yes'",
    ]


@pytest.mark.parametrize("name", ["exact_match", "contains", "token_f1", "accuracy", "f1_macro"])
def test_missing_expected_is_a_metric_error(metrics: dict[str, Metric], name: str) -> None:
    message = f"metric '{name}' needs an expected value; set task.expected"
    with pytest.raises(MetricError, match=message):
        metrics[name].score(sample("output"), {})


@pytest.mark.parametrize("name", ["regex", "json_valid", "latency_p95"])
def test_metrics_without_expected_value(metrics: dict[str, Metric], name: str) -> None:
    args = {"pattern": "o"} if name == "regex" else {}
    assert isinstance(metrics[name].score(sample("output"), args), float)


def test_empty_variant_aggregates_to_nan(metrics: dict[str, Metric]) -> None:
    for name in ("exact_match", "latency_p95", "accuracy", "f1_macro"):
        assert math.isnan(metrics[name].aggregate([], [], {}))


# -- plugin-author helpers --------------------------------------------------------------


class NoCompetitor(CaseMetric):
    name = "no_competitor"
    description = "1.0 when the answer names no competitor"
    allowed_args = frozenset({"names"})

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        names = args.get("names", ["globex"])
        return float(not any(n in sample.output.lower() for n in names))


def test_case_metric_subclass() -> None:
    metric: Metric = NoCompetitor()
    assert metric.higher_is_better
    assert metric.check_args({"nmes": []}) == [
        "unknown argument 'nmes' for metric 'no_competitor' (allowed: names)"
    ]
    assert run(metric, [("Try Globex", None), ("Try Acme", None)]) == 0.5
    assert repr(metric) == "<NoCompetitor 'no_competitor'>"


def test_case_metric_subclass_must_implement_score() -> None:
    class Empty(CaseMetric):
        name = "empty"

    with pytest.raises(NotImplementedError):
        Empty().score(sample("x"), {})


def test_case_metric_require_expected() -> None:
    class Echo(CaseMetric):
        name = "echo"

        def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
            return float(sample.output == self.expected_text(sample))

    assert Echo().score(sample("3", 3), {}) == 1.0
    with pytest.raises(MetricError, match="metric 'echo' needs an expected value"):
        Echo().score(sample("3"), {})


def test_case_metric_decorator() -> None:
    @case_metric(name="short", allowed_args=["max_words"])
    def short(sample: Sample, args: Mapping[str, Any]) -> bool:
        """1.0 when the answer is short.

        More text here.
        """
        return len(sample.output.split()) <= args.get("max_words", 3)

    assert (short.name, short.description) == ("short", "1.0 when the answer is short.")
    assert short.check_args({"max_words": 2}) == []
    assert short.check_args({"words": 2}) == ["unknown argument 'words' for metric 'short' (allowed: max_words)"]
    assert short.score(sample("one two"), {}) == 1.0
    assert run(short, [("a b c d", None), ("a", None)], max_words=2) == 0.5


def test_case_metric_decorator_defaults_and_non_numbers() -> None:
    @case_metric(higher_is_better=False)
    def word_count(sample: Sample, args: Mapping[str, Any]) -> Any:
        return "many" if sample.output == "?" else len(sample.output.split())

    assert (word_count.name, word_count.description, word_count.higher_is_better) == ("word_count", "", False)
    assert word_count.score(sample("a b"), {}) == 2.0
    with pytest.raises(MetricError, match="metric 'word_count' returned 'many', which is not a number"):
        word_count.score(sample("?"), {})


def test_cost_is_the_total_of_the_calls_and_lower_is_better(metrics: dict[str, Metric]) -> None:
    from llmopt.dataset import Case
    from llmopt.metric import Sample

    cost = metrics["cost"]
    samples = [Sample(case=Case(id=str(i)), output="x", cost_usd=c) for i, c in enumerate((0.01, 0.02, 0.005))]
    scores = [cost.score(s, {}) for s in samples]
    assert scores == [0.01, 0.02, 0.005]
    assert cost.aggregate(samples, scores, {}) == pytest.approx(0.035)
    assert cost.higher_is_better is False

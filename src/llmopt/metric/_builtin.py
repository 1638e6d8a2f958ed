"""The built-in metrics: answer matching, regex, JSON validity, latency, cost, retrieval."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Mapping, Sequence

from ..errors import MetricError
from ._aggregate import percentile
from ._args import bool_arg, choice_arg, missing_arg, str_arg, str_list_arg
from ._base import NON_NEGATIVE, UNIT_RANGE, Metric, Sample
from ._case_metric import CaseMetric
from ._classification import Accuracy, F1Macro
from ._judge import judge_metrics
from ._normalize import answer_tokens, normalize_answer
from ._retrieval import retrieval_metrics
from ._text import text_metrics

__all__ = [
    "ExactMatch",
    "Contains",
    "Regex",
    "TokenF1",
    "JsonValid",
    "LatencyP95",
    "builtin_metrics",
    "token_f1",
    "strip_json_fence",
]


def _references(metric: CaseMetric, sample: Sample) -> list[str]:
    """The expected value as a list of strings: a list gives one reference per item."""
    expected = metric.require_expected(sample)
    if not isinstance(expected, (list, tuple)):
        return [str(expected)]
    if not expected:
        raise MetricError(f"metric '{metric.name}' got an empty list as expected value")
    return [str(item) for item in expected]


class ExactMatch(CaseMetric):
    """Normalized exact match; a list of expected answers matches any of them."""

    name = "exact_match"
    description = "1.0 when the output equals the expected answer after normalization"
    value_range = UNIT_RANGE

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        output = normalize_answer(sample.output)
        refs = _references(self, sample)
        return float(any(output == normalize_answer(ref) for ref in refs))


class Contains(CaseMetric):
    """The normalized expected text (any, or ``all: true`` every item) is in the output."""

    name = "contains"
    description = "1.0 when the normalized expected text appears in the normalized output"
    value_range = UNIT_RANGE
    allowed_args = frozenset({"case_sensitive", "all"})

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        problems = super().check_args(args)
        return problems + bool_arg(self.name, args, "case_sensitive") + bool_arg(self.name, args, "all")

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        lowercase = not args.get("case_sensitive", False)
        output = normalize_answer(sample.output, lowercase=lowercase)
        found = [normalize_answer(ref, lowercase=lowercase) in output for ref in _references(self, sample)]
        return float(all(found) if args.get("all", False) else any(found))


_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class Regex(CaseMetric):
    """``args.pattern`` found in the output with ``re.search``; ``flags`` like ``"im"``."""

    name = "regex"
    description = "1.0 when args.pattern matches the output (re.search)"
    value_range = UNIT_RANGE
    allowed_args = frozenset({"pattern", "flags"})

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        problems = super().check_args(args) + missing_arg(self.name, args, "pattern")
        problems += str_arg(self.name, args, "pattern") + str_arg(self.name, args, "flags")
        if problems:
            return problems
        problems += self._flag_problems(args.get("flags", ""))
        if not problems:
            try:
                re.compile(args["pattern"], self._flags(args))
            except re.error as exc:
                problems.append(f"argument 'pattern' of metric '{self.name}' does not compile: {exc}")
        return problems

    def _flag_problems(self, flags: str) -> list[str]:
        allowed = ", ".join(_REGEX_FLAGS)
        return [
            f"argument 'flags' of metric '{self.name}' has unknown flag {flag!r} (allowed: {allowed})"
            for flag in dict.fromkeys(flags)
            if flag not in _REGEX_FLAGS
        ]

    def _flags(self, args: Mapping[str, Any]) -> int:
        value = 0
        for flag in args.get("flags", ""):
            value |= _REGEX_FLAGS[flag]
        return value

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        problems = self.check_args(args)
        if problems:
            raise MetricError("; ".join(problems))
        return float(re.search(args["pattern"], sample.output, self._flags(args)) is not None)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style F1 between the normalized tokens of two texts (0..1)."""
    predicted, expected = answer_tokens(prediction), answer_tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


class TokenF1(CaseMetric):
    """Token F1; a list of expected answers scores the best of them."""

    name = "token_f1"
    description = "SQuAD-style token F1 between the normalized output and expected answer"
    value_range = UNIT_RANGE

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        return max(token_f1(sample.output, ref) for ref in _references(self, sample))


_FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL | re.IGNORECASE)


def strip_json_fence(text: str) -> str:
    """``text`` without surrounding whitespace and a surrounding ```json fence."""
    text = text.strip()
    match = _FENCE.match(text)
    return match.group(1) if match else text


class JsonValid(CaseMetric):
    """The output parses as JSON, optionally of a ``type`` with ``required`` keys."""

    name = "json_valid"
    description = "1.0 when the output parses as JSON (fences stripped), with the required shape"
    value_range = UNIT_RANGE
    allowed_args = frozenset({"required", "type"})

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        problems = super().check_args(args) + str_list_arg(self.name, args, "required")
        return problems + choice_arg(self.name, args, "type", ("object", "array"))

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        try:
            value = json.loads(strip_json_fence(sample.output))
        except ValueError:
            return 0.0
        return float(_has_shape(value, args.get("type"), args.get("required") or ()))


def _has_shape(value: Any, kind: str | None, required: Sequence[str]) -> bool:
    if kind == "object" and not isinstance(value, dict):
        return False
    if kind == "array" and not isinstance(value, list):
        return False
    if required and not isinstance(value, dict):
        return False
    return all(key in value for key in required)


class LatencyP95(CaseMetric):
    """Per case the latency in seconds; the aggregate is the 95th percentile."""

    name = "latency_p95"
    description = "95th percentile of the generation latency in seconds (lower is better)"
    higher_is_better = False
    value_range = NON_NEGATIVE

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        return float(sample.latency_s)

    def aggregate(
        self, samples: Sequence[Sample], scores: Sequence[float], args: Mapping[str, Any]
    ) -> float:
        return percentile(scores, 95)


class Cost(CaseMetric):
    """Per case what its calls cost in USD; the aggregate is the variant's total.

    A cache hit counts what the original call cost, so the metric measures what the
    variant costs to run, whatever the cache saved this time.
    """

    name = "cost"
    description = "total USD cost of the variant's calls (lower is better)"
    higher_is_better = False
    value_range = NON_NEGATIVE

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        return float(sample.cost_usd)

    def aggregate(
        self, samples: Sequence[Sample], scores: Sequence[float], args: Mapping[str, Any]
    ) -> float:
        return float(sum(scores))


def builtin_metrics() -> list[Metric]:
    """A fresh instance of every built-in metric."""
    return [
        ExactMatch(),
        Contains(),
        Regex(),
        TokenF1(),
        JsonValid(),
        LatencyP95(),
        Cost(),
        Accuracy(),
        F1Macro(),
        *retrieval_metrics(),
        *judge_metrics(),
        *text_metrics(),
    ]

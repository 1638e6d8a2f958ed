"""Literal text checks, scored 1.0 (pass) or 0.0 (fail) per case.

Unlike ``contains`` and ``exact_match``, which normalize case, punctuation and
articles, these compare the raw output, as promptfoo's assertions do:

- ``equals``: the output is ``value`` (a mapping or list: the output parses as that JSON);
- ``substring``: ``value`` (a string, or a list: any, or ``all: true`` every item) is in
  the output, ``ignore_case: true`` for any case;
- ``starts_with``: the output starts with ``value``;
- ``matches``: the regular expression ``value`` is found in the output;
- ``is_json`` / ``contains_json``: the output is (contains) JSON, valid against the JSON
  Schema ``value`` when one is given;
- ``within_latency`` / ``within_cost``: the case's latency (seconds) or cost (USD) is at
  most ``value``;
- ``rubric``: a judging model (``args.judge``) decides whether the output meets ``value``.

Each takes its value from ``args.value`` or, per case, from the case field
``args.field``: a case whose field is null or absent does not make the check and
scores 1.0 (so ``min: 1.0`` still means every case that makes it passes).
``negate: true`` inverts each verdict. The aggregate is the mean.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import MetricError
from ._args import bool_arg, str_arg, unknown_args
from ._base import UNIT_RANGE, Sample
from ._case_metric import CaseMetric
from ._judge import JudgeContext, RubricJudge, judge_messages
from ._judge_args import check_judge, judge_spec
from ._verdict import read_scale

__all__ = ["TextCheck", "text_metrics"]

_COMMON = frozenset({"value", "field", "negate"})


def _absent(args: Mapping[str, Any], sample: Sample) -> bool:
    """True when the check takes its value from a field the case does not set."""
    return "field" in args and sample.case.fields.get(args["field"]) is None


def _value_problems(name: str, args: Mapping[str, Any]) -> list[str]:
    if ("value" in args) == ("field" in args):
        return [f"metric '{name}' needs exactly one of arguments 'value' and 'field'"]
    return str_arg(name, args, "field") + bool_arg(name, args, "negate")


class TextCheck(CaseMetric):
    """Base of the checks: the value, the ``field`` lookup and ``negate``."""

    allowed_args = _COMMON
    value_range = UNIT_RANGE

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        problems = unknown_args(self.name, args, self.allowed_args) + _value_problems(self.name, args)
        if not problems and "value" in args:
            problems += self.value_problems(args["value"])
        return problems

    def value_problems(self, value: Any) -> list[str]:
        """Problems with the check's value (subclasses)."""
        return []

    def value(self, sample: Sample, args: Mapping[str, Any]) -> Any:
        if "field" not in args:
            return args["value"]
        value = sample.case.fields.get(args["field"])
        problems = self.value_problems(value)
        if problems:
            raise MetricError(f"case field '{args['field']}': " + "; ".join(problems))
        return value

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        if _absent(args, sample):
            return 1.0
        passed = self.passes(sample, self.value(sample, args), args)
        return float(passed != bool(args.get("negate", False)))

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        """Whether the output passes against ``value`` (subclasses)."""
        raise NotImplementedError


def _text(value: Any) -> str:
    """A scalar as JavaScript's ``String()`` writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _scalar_problems(name: str, value: Any) -> list[str]:
    if isinstance(value, (str, int, float, bool)):
        return []
    return [f"metric '{name}' needs a text value, got {value!r}"]


class Equals(TextCheck):
    name = "equals"
    description = "1.0 when the output is exactly the value (a mapping or list: equal JSON)"

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        if isinstance(value, (dict, list)):
            try:
                return bool(json.loads(sample.output) == value)
            except ValueError:
                return False
        return sample.output == _text(value)


class Substring(TextCheck):
    name = "substring"
    description = "1.0 when the value (any item of a list; all: true every item) is in the raw output"
    allowed_args = _COMMON | {"ignore_case", "all"}

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        problems = super().check_args(args)
        return problems + bool_arg(self.name, args, "ignore_case") + bool_arg(self.name, args, "all")

    def value_problems(self, value: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        return [p for item in items for p in _scalar_problems(self.name, item)] if items else [
            f"metric '{self.name}' got an empty list"
        ]

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        fold = str.lower if args.get("ignore_case") else str
        output = fold(sample.output)
        found = [fold(_text(item)) in output for item in (value if isinstance(value, list) else [value])]
        return all(found) if args.get("all") else any(found)


class StartsWith(TextCheck):
    name = "starts_with"
    description = "1.0 when the raw output starts with the value"

    def value_problems(self, value: Any) -> list[str]:
        return _scalar_problems(self.name, value)

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        return sample.output.startswith(_text(value))


class Matches(TextCheck):
    name = "matches"
    description = "1.0 when the regular expression value is found in the output (re.search)"

    def value_problems(self, value: Any) -> list[str]:
        if not isinstance(value, str):
            return [f"metric '{self.name}' needs a regular expression, got {value!r}"]
        try:
            re.compile(value)
        except re.error as exc:
            return [f"the pattern of metric '{self.name}' does not compile: {exc}"]
        return []

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        return re.search(value, sample.output) is not None


def _schema_problems(name: str, schema: Any) -> list[str]:
    if schema is None:
        return []
    if not isinstance(schema, dict):
        return [f"the JSON Schema of metric '{name}' must be a mapping, got {schema!r}"]
    from jsonschema import SchemaError, validators

    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return [f"the JSON Schema of metric '{name}' is invalid: {exc.message}"]
    return []


def _fits(value: Any, schema: Any) -> bool:
    if schema is None:
        return True
    from jsonschema import validators

    return bool(validators.validator_for(schema)(schema).is_valid(value))


class IsJson(TextCheck):
    name = "is_json"
    description = "1.0 when the whole output is JSON (valid against the JSON Schema value, if any)"

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        given = dict(args) if ("value" in args or "field" in args) else {**args, "value": None}
        return super().check_args(given)

    def value_problems(self, value: Any) -> list[str]:
        return _schema_problems(self.name, value)

    def value(self, sample: Sample, args: Mapping[str, Any]) -> Any:
        return super().value(sample, args) if ("value" in args or "field" in args) else None

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        try:
            parsed = json.loads(sample.output)
        except ValueError:
            return False
        return _fits(parsed, value)


def json_values(text: str) -> list[Any]:
    """Every JSON object or array embedded in ``text``, in order of their start."""
    decoder = json.JSONDecoder()
    found, start = [], 0
    for match in re.finditer(r"[{\[]", text):
        if match.start() < start:
            continue
        try:
            value, end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        found.append(value)
        start = end
    return found


class ContainsJson(IsJson):
    name = "contains_json"
    description = "1.0 when the output contains a JSON object or array (valid against the JSON Schema value, if any)"

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        return any(_fits(found, value) for found in json_values(sample.output))


def _bound_problems(name: str, value: Any) -> list[str]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return []
    return [f"metric '{name}' needs a number >= 0, got {value!r}"]


class WithinLatency(TextCheck):
    name = "within_latency"
    description = "1.0 when the case's latency is at most value seconds (a cache hit: the original call's)"

    def value_problems(self, value: Any) -> list[str]:
        return _bound_problems(self.name, value)

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        return float(sample.latency_s) <= float(value)


class WithinCost(TextCheck):
    name = "within_cost"
    description = "1.0 when the case's calls cost at most value USD"

    def value_problems(self, value: Any) -> list[str]:
        return _bound_problems(self.name, value)

    def passes(self, sample: Sample, value: Any, args: Mapping[str, Any]) -> bool:
        return float(sample.cost_usd) <= float(value)


class Rubric(RubricJudge):
    """A judging model decides pass (1) or fail (0) against a rubric per case.

    With ``threshold`` the judge grades 0..10 and the case passes at a grade of at
    least ``threshold`` x 10.
    """

    name = "rubric"
    description = "1.0 when a judging model finds the output meets the rubric value (field: per case)"
    allowed_args = _COMMON | {"judge", "threshold"}

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        problems = unknown_args(self.name, args, self.allowed_args) + _value_problems(self.name, args)
        threshold = args.get("threshold")
        if threshold is not None and not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
            problems.append(f"argument 'threshold' of metric '{self.name}' must be a number from 0 to 1, got {threshold!r}")
        return problems + check_judge(self.name, args)

    def scale(self, args: Mapping[str, Any]) -> tuple[int, int]:
        return (0, 10) if args.get("threshold") is not None else (0, 1)

    def instructions(self, args: Mapping[str, Any]) -> str:
        return f"You grade an answer by the rubric in the <rubric> block. {self._meaning(args)}"

    def _meaning(self, args: Mapping[str, Any]) -> str:
        if args.get("threshold") is not None:
            return "Grade 10 when the answer fully meets the rubric, 0 when it does not meet it at all."
        return "The verdict is 1 when the answer meets the rubric, 0 when it does not."

    async def ascore(self, sample: Sample, args: Mapping[str, Any], ctx: JudgeContext) -> float:
        if _absent(args, sample):
            return 1.0
        rubric = str(args["value"] if "value" in args else sample.case.fields[args["field"]])
        blocks = [("rubric", rubric), *self.blocks(sample, args)]
        reply = await ctx.ask(judge_spec(args), judge_messages(self.instructions(args), self.verdict_format(args), blocks))
        verdict = read_scale(reply, self.name, *self.scale(args))
        threshold = args.get("threshold")
        passed = verdict.score >= float(threshold) if threshold is not None else verdict.score >= 1.0
        score = float(passed != bool(args.get("negate", False)))
        ctx.note(verdict.verdict, score, verdict.reason)
        return score


def text_metrics() -> list[CaseMetric]:
    """A fresh instance of every text check."""
    return [
        Equals(),
        Substring(),
        StartsWith(),
        Matches(),
        IsJson(),
        ContainsJson(),
        WithinLatency(),
        WithinCost(),
        Rubric(),
    ]

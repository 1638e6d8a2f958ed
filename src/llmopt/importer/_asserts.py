"""One promptfoo assertion of one test as an llmopt metric check."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._notes import Notes
from ._nunjucks import render, to_jinja
from ._providers import convert as convert_provider
from ._source import is_file_ref, read_document, ref_path, shown
from ._tests import Assert, Test

#: promptfoo's default grading model (used when no grader is named).
DEFAULT_JUDGE = {"provider": "openai", "id": "gpt-4.1-2025-04-14", "params": {"temperature": 0}}
#: promptfoo type -> (llmopt metric, fixed args).
TEXT = {
    "equals": ("equals", {}),
    "contains": ("substring", {}),
    "icontains": ("substring", {"ignore_case": True}),
    "contains-any": ("substring", {}),
    "icontains-any": ("substring", {"ignore_case": True}),
    "contains-all": ("substring", {"all": True}),
    "icontains-all": ("substring", {"all": True, "ignore_case": True}),
    "starts-with": ("starts_with", {}),
    "regex": ("matches", {}),
}
_JSON = {"is-json": "is_json", "contains-json": "contains_json"}
_BOUNDS = {"latency": ("within_latency", 0.001), "cost": ("within_cost", 1.0)}
_JUDGED = ("llm-rubric", "model-graded-closedqa")
_KNOWN_KEYS = {"type", "value", "threshold", "weight", "provider", "config"}
_REASONS = {
    "javascript": "javascript assertions are not converted (write the check as a python assertion or an llmopt plugin metric)",
    "similar": "embedding similarity has no llmopt metric yet",
}


@dataclass(frozen=True)
class PythonCode:
    """A python assertion: a file's function, or inline code."""

    file: Path | None = None
    function: str = "get_assert"
    inline: str | None = None


@dataclass(frozen=True)
class Check:
    """A converted assertion for one case: the metric, its fixed args and the case's value.

    ``value`` is None for a check that takes none (``is-json`` without a schema).
    """

    kind: str
    metric: str
    args: Mapping[str, Any]
    value: Any = None
    weight: float = 1.0
    python: PythonCode | None = field(default=None)


def convert_assert(item: Assert, test: Test, notes: Notes) -> Check | None:
    """The check ``item`` makes on ``test``; None (with a note) when it does not convert."""
    raw = item.raw
    kind = str(raw["type"])
    negate, base = (True, kind[4:]) if kind.startswith("not-") else (False, kind)
    for key in sorted(set(raw) - _KNOWN_KEYS):
        why = "named metrics are not carried over (llmopt names checks by metric)" if key == "metric" else (
            "the check changes what is compared; the assertion is not converted")
        notes.skip(item.source, (*item.path, key), why)
        if key != "metric":
            return None
    check = _convert(base, negate, raw, item, test, notes)
    if check is not None and negate:
        return Check(check.kind, check.metric, {**check.args, "negate": True}, check.value, check.weight, check.python)
    return check


def _convert(base: str, negate: bool, raw: dict[str, Any], item: Assert, test: Test, notes: Notes) -> Check | None:
    weight = float(raw.get("weight", 1.0))
    kind = ("not-" if negate else "") + base
    if base in TEXT:
        value = _value(raw.get("value"), item, test, notes)
        if value is _FAILED:
            return None
        if base.endswith(("-any", "-all")) and isinstance(value, str):
            value = [v.strip() for v in value.split(",")]
        metric, args = TEXT[base]
        return Check(kind, metric, args, value, weight)
    if base in _JSON:
        return _json_check(kind, _JSON[base], raw, item, weight, notes)
    if base in _BOUNDS and not negate:
        return _bound(kind, base, raw, item, weight, notes)
    if base in _JUDGED:
        return _judged(kind, base, raw, item, test, weight, notes)
    if base == "python":
        return _python(kind, raw, item, weight, notes)
    notes.skip(item.source, (*item.path, "type"), _REASONS.get(base, f"assertion type '{raw['type']}' has no llmopt form"))
    return None


_FAILED = object()


def _value(value: Any, item: Assert, test: Test, notes: Notes) -> Any:
    """A string value rendered with the test's vars, as promptfoo renders it."""
    if isinstance(value, list):
        rendered = [_value(v, item, test, notes) for v in value]
        return _FAILED if _FAILED in rendered else rendered
    if not isinstance(value, str):
        if value is None:
            notes.skip(item.source, item.path, "the assertion has no value")
            return _FAILED
        return value
    converted = to_jinja(value)
    if converted.problems:
        notes.skip(item.source, (*item.path, "value"), "; ".join(converted.problems))
        return _FAILED
    return render(converted.text, test.vars) if "{" in value else value


def _json_check(kind: str, metric: str, raw: dict[str, Any], item: Assert, weight: float, notes: Notes) -> Check | None:
    schema = raw.get("value")
    if isinstance(schema, str) and is_file_ref(schema):
        file = ref_path(item.source.path.parent, schema)
        if not file.is_file():
            notes.skip(item.source, (*item.path, "value"), f"no such schema file: {shown(file)}")
            return None
        schema, _ = read_document(file)
    elif isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            notes.skip(item.source, (*item.path, "value"), "the schema is not JSON")
            return None
    return Check(kind, metric, {}, schema if schema is not None else {}, weight)


def _bound(kind: str, base: str, raw: dict[str, Any], item: Assert, weight: float, notes: Notes) -> Check | None:
    threshold = raw.get("threshold")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        notes.skip(item.source, item.path, f"a {base} assertion needs a numeric threshold")
        return None
    metric, scale = _BOUNDS[base]
    return Check(kind, metric, {}, round(float(threshold) * scale, 9), weight)


def _judged(kind: str, base: str, raw: dict[str, Any], item: Assert, test: Test, weight: float, notes: Notes) -> Check | None:
    judge = _judge(raw.get("provider", test.grader), item, notes)
    value = _value(raw.get("value"), item, test, notes)
    if judge is None or value is _FAILED:
        return None
    args: dict[str, Any] = {"judge": judge}
    if base == "model-graded-closedqa":
        value = f"The answer meets this criterion: {value}"
    elif isinstance(raw.get("threshold"), (int, float)):
        args["threshold"] = float(raw["threshold"])
    return Check(kind, "rubric", args, str(value), weight)


def _judge(provider: Any, item: Assert, notes: Notes) -> dict[str, Any] | None:
    if provider is None:
        return dict(DEFAULT_JUDGE)
    pid = provider if isinstance(provider, str) else provider.get("id") if isinstance(provider, dict) else None
    if not isinstance(pid, str):
        notes.skip(item.source, (*item.path, "provider"), "the grader must be a provider id or {id, config}")
        return None
    config = provider.get("config", {}) if isinstance(provider, dict) else {}
    target = convert_provider(pid, config, pid, (*item.path, "provider"), item.source, notes)
    if target is None or target.python is not None:
        if target is not None:
            notes.skip(item.source, (*item.path, "provider"), "python graders are not converted")
        return None
    return target.model


def _python(kind: str, raw: dict[str, Any], item: Assert, weight: float, notes: Notes) -> Check | None:
    value = raw.get("value")
    if not isinstance(value, str) or not value.strip():
        notes.skip(item.source, item.path, "a python assertion needs code or a file:// value")
        return None
    args: dict[str, Any] = {}
    if isinstance(raw.get("threshold"), (int, float)):
        args["threshold"] = float(raw["threshold"])
    if isinstance(raw.get("config"), dict):
        args["config"] = raw["config"]
    if is_file_ref(value):
        where, _, function = value[len("file://"):].partition(":")
        code = PythonCode(file=ref_path(item.source.path.parent, where), function=function or "get_assert")
    else:
        code = PythonCode(inline=value.strip("\n"))
    return Check(kind, "python", args, True, weight, code)

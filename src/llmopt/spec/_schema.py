"""The packaged JSON Schema of specs, and its errors turned into friendly issues."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, cast

from ._problems import Issue, KeyPath
from ._suggest import unknown_key

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

_ID_RULE = "must start with a letter, digit or '_' and contain only letters, digits, '-', '_' and '.'"
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}
#: Validators whose problem is about a value; one of them is kept per place, type first.
_RANK = {"type": 0, "const": 1, "enum": 1}
#: The largest whole number a spec may hold where it expects an integer (64 bits).
MAX_INTEGER = 2**63 - 1


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of spec files, as a fresh dict."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def is_finite_number(value: Any) -> bool:
    """A number a spec may hold: not a boolean, not NaN or an infinity, and (for a
    whole number) small enough to become a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return abs(value) <= MAX_INTEGER


def number_problem(value: Any) -> str | None:
    """Why a number read from YAML is unusable where a number is expected, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or is_finite_number(value):
        return None
    if isinstance(value, float):
        return f"must be a finite number, got {show(value)}"
    return f"is too large: at most {MAX_INTEGER}, got {show(value)}"


@lru_cache(maxsize=1)
def _validator() -> "Draft202012Validator":
    return schema_validator(spec_schema())


@lru_cache(maxsize=1)
def _id_pattern() -> str:
    """The pattern every id in a spec must match."""
    return str(spec_schema()["$defs"]["id"]["pattern"])


def schema_validator(schema: dict[str, Any]) -> "Draft202012Validator":
    """A validator of a packaged schema (specs, recipe files), for :func:`schema_issues`.

    Its numbers are finite: ``.nan``, ``.inf`` and whole numbers beyond 64 bits fail the
    ``number`` and ``integer`` types, so no range check can pass them.
    """
    from jsonschema import Draft202012Validator, validators

    base = Draft202012Validator.TYPE_CHECKER
    checker = base.redefine_many(
        {
            "number": lambda checker, value: base.is_type(value, "number") and is_finite_number(value),
            "integer": lambda checker, value: base.is_type(value, "integer") and is_finite_number(value),
        }
    )
    finite = validators.extend(Draft202012Validator, type_checker=checker)
    return cast("Draft202012Validator", finite(schema))


def schema_issues(data: Any, validator: "Draft202012Validator | None" = None) -> list[Issue]:
    """Every schema problem of ``data`` (against the spec schema unless ``validator`` is
    given); at most one value problem per place."""
    found: list[tuple[int, Issue]] = []
    for error in (validator or _validator()).iter_errors(data):
        path = tuple(error.absolute_path)
        if error.validator in ("additionalProperties", "required") or "propertyNames" in error.schema_path:
            found.extend((-1, issue) for issue in _structural(error, path))
        else:
            rank = _RANK.get(str(error.validator), 2)
            found.append((rank, Issue(path, _value_message(error, path), at_value=True)))
    return _one_per_place(found)


def _one_per_place(found: list[tuple[int, Issue]]) -> list[Issue]:
    """Keep structural issues, and the best-ranked value issue of each place."""
    best: dict[KeyPath, int] = {}
    for rank, issue in found:
        if rank >= 0 and rank < best.get(issue.path, 99):
            best[issue.path] = rank
    out: list[Issue] = []
    taken: set[KeyPath] = set()
    for rank, issue in found:
        if rank < 0:
            out.append(issue)
        elif rank == best[issue.path] and issue.path not in taken:
            taken.add(issue.path)
            out.append(issue)
    return out


def _structural(error: "ValidationError", path: KeyPath) -> list[Issue]:
    if error.validator == "required":
        return _missing(error, path)
    if error.validator == "additionalProperties":
        return _unknown_keys(error, path)
    name = str(error.instance)
    rule = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    return [Issue(path + (name,), rule.format(name=name) if rule else f"name '{name}' {_ID_RULE}")]


def _missing(error: "ValidationError", path: KeyPath) -> list[Issue]:
    present = error.instance if isinstance(error.instance, dict) else {}
    required = error.validator_value if isinstance(error.validator_value, list) else []
    missing = [key for key in required if key not in present]
    return [Issue(path, f"missing required key '{key}'", about=path + (key,)) for key in missing]


def _unknown_keys(error: "ValidationError", path: KeyPath) -> list[Issue]:
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [Issue(path + (key,), unknown_key(key, known)) for key in instance if key not in known]


def _value_message(error: "ValidationError", path: KeyPath) -> str:
    rule = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if rule:
        return rule.format(name=error.instance, value=show(error.instance))
    handler = _MESSAGES.get(str(error.validator))
    if handler is None:
        return error.message
    return handler(error.validator_value, error.instance, path)


def show(value: Any) -> str:
    """A short rendering of a YAML value for messages."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _TYPE_NAMES["object" if isinstance(value, dict) else "array"]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        return _big(value)
    return repr(value)


def _big(value: int) -> str:
    """A whole number too long to print, by its number of digits."""
    size = abs(value)
    digits = len(str(size)) if size.bit_length() < 13_000 else f"about {int(size.bit_length() * 0.30103) + 1}"
    return f"a {'negative ' if value < 0 else ''}number of {digits} digits"


def _type_message(expected: Any, value: Any, path: KeyPath) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    if {"number", "integer"} & set(names):
        problem = number_problem(value)
        if problem is not None:
            return problem
    shown = [_TYPE_NAMES.get(n, n) for n in names if n != "null"] or ["null"]
    return f"expected {' or '.join(shown)}, got {show(value)}"


def _const_message(expected: Any, value: Any, path: KeyPath) -> str:
    if path == ("llmopt",):
        return f"unsupported spec format {show(value)}; this llmopt reads format {expected}"
    return f"must be {show(expected)}, got {show(value)}"


def _pattern_message(pattern: Any, value: Any, path: KeyPath) -> str:
    rule = _ID_RULE if pattern == _id_pattern() else f"must match {pattern}"
    return f"{rule}, got {show(value)}"


def _bound(symbol: str) -> Callable[[Any, Any, KeyPath], str]:
    return lambda limit, value, path: f"must be {symbol} {limit}, got {show(value)}"


_MESSAGES: dict[str, Callable[[Any, Any, KeyPath], str]] = {
    "type": _type_message,
    "const": _const_message,
    "enum": lambda options, value, path: f"must be one of {', '.join(map(show, options))}, got {show(value)}",
    "pattern": _pattern_message,
    "minimum": _bound(">="),
    "maximum": _bound("<="),
    "exclusiveMinimum": _bound(">"),
    "exclusiveMaximum": _bound("<"),
    "minLength": lambda limit, value, path: "must not be empty",
    "minItems": lambda limit, value, path: f"must hold at least {limit} item{'s' if limit != 1 else ''}",
    "minProperties": lambda limit, value, path: f"must hold at least {limit} entr{'ies' if limit != 1 else 'y'}",
}

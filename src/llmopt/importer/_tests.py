"""promptfoo ``tests`` and ``defaultTest`` as cases: vars, asserts, threshold, grader."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec._problems import KeyPath
from ._csv_asserts import assertion_from_string
from ._notes import Notes, Source
from ._source import expand, is_file_ref, read_document, read_rows, ref_path, shown

_TEST_KEYS = {"description", "vars", "assert", "threshold", "options"}
_CODE = (".py", ".js", ".ts", ".mjs", ".cjs")


@dataclass(frozen=True)
class Assert:
    """One promptfoo assertion and where it is written."""

    raw: dict[str, Any]
    source: Source
    path: KeyPath


@dataclass(frozen=True)
class Test:
    """One promptfoo test (after ``defaultTest`` and list-valued vars are applied)."""

    id: str
    vars: dict[str, Any]
    asserts: tuple[Assert, ...]
    description: str | None = None
    threshold: float | None = None
    grader: Any = None


@dataclass
class _Defaults:
    vars: dict[str, Any] = field(default_factory=dict)
    asserts: list[Assert] = field(default_factory=list)
    threshold: float | None = None
    grader: Any = None


def load_tests(config: dict[str, Any], source: Source, notes: Notes) -> list[Test]:
    """Every test of the config, with ids unique and stable."""
    defaults = _defaults(config.get("defaultTest"), source, notes)
    tests: list[Test] = []
    for raw, src, path in _raw_tests(config.get("tests"), source, notes):
        tests += _tests(raw, src, path, defaults, notes)
    return _with_ids(tests)


def _raw_tests(entries: Any, source: Source, notes: Notes) -> list[tuple[dict[str, Any], Source, KeyPath]]:
    if entries is None:
        return []
    items = [entries] if isinstance(entries, str) else entries if isinstance(entries, list) else None
    if items is None:
        notes.skip(source, ("tests",), "not a list of tests or a file reference")
        return []
    out: list[tuple[dict[str, Any], Source, KeyPath]] = []
    for i, item in enumerate(items):
        path: KeyPath = ("tests",) if isinstance(entries, str) else ("tests", i)
        if isinstance(item, dict):
            out.append((item, source, path))
        elif isinstance(item, str):
            out += _file_tests(item, source, path, notes)
        else:
            notes.skip(source, path, "not a test")
    return out


def _file_tests(ref: str, source: Source, path: KeyPath, notes: Notes) -> list[tuple[dict[str, Any], Source, KeyPath]]:
    paths = expand(source.path.parent, ref)
    out: list[tuple[dict[str, Any], Source, KeyPath]] = []
    for file in paths:
        if file.suffix.lower() in _CODE or not file.is_file():
            notes.skip(source, path, f"tests from {shown(file)} are not converted (no such file, or test-generating code)")
            continue
        rows, src = read_rows(file)
        csv = file.suffix.lower() == ".csv"
        for j, row in enumerate(rows):
            if isinstance(row, dict):
                out.append((_csv_test(row, src, (j,), notes) if csv else row, src, (j,)))
            else:
                notes.skip(src, (j,), "not a test")
    if not paths:
        notes.skip(source, path, f"no file matches {ref}")
    return out


def _csv_test(row: dict[str, Any], source: Source, path: KeyPath, notes: Notes) -> dict[str, Any]:
    """A CSV row: columns are vars, ``__expected*`` assertions, ``__description``, ``__threshold``."""
    test: dict[str, Any] = {"vars": {}, "assert": []}
    for key, value in row.items():
        if re.fullmatch(r"__expected\d*", key):
            if value.strip():
                test["assert"].append(assertion_from_string(value.strip()))
        elif key == "__description":
            test["description"] = value
        elif key == "__threshold" and value.strip():
            test["threshold"] = float(value)
        elif key.startswith("__"):
            notes.skip(source, (*path, key), "this CSV column has no llmopt form")
        else:
            test["vars"][key] = value
    return test


def _defaults(raw: Any, source: Source, notes: Notes) -> _Defaults:
    if raw is None:
        return _Defaults()
    if is_file_ref(raw):
        raw, source = read_document(ref_path(source.path.parent, raw))
        path: KeyPath = ()
    else:
        path = ("defaultTest",)
    if not isinstance(raw, dict):
        notes.skip(source, path, "not a mapping")
        return _Defaults()
    return _Defaults(
        vars=_vars(raw.get("vars"), source, (*path, "vars"), notes),
        asserts=_asserts(raw.get("assert"), source, (*path, "assert"), notes),
        threshold=_threshold(raw, source, path, notes),
        grader=_options(raw, source, path, notes),
    )


def _tests(raw: dict[str, Any], source: Source, path: KeyPath, defaults: _Defaults, notes: Notes) -> list[Test]:
    for key in sorted(set(raw) - _TEST_KEYS):
        notes.skip(source, (*path, key), "this test option has no llmopt form")
    grader = _options(raw, source, path, notes)
    variables = {**defaults.vars, **_vars(raw.get("vars"), source, (*path, "vars"), notes)}
    asserts = tuple(defaults.asserts + _asserts(raw.get("assert"), source, (*path, "assert"), notes))
    threshold = _threshold(raw, source, path, notes)
    description = str(raw["description"]) if raw.get("description") is not None else None
    return [
        Test("", combo, asserts, description, threshold if threshold is not None else defaults.threshold,
             grader if grader is not None else defaults.grader)
        for combo in _combinations(variables)
    ]


def _combinations(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """promptfoo runs a test once per combination of its list-valued vars."""
    lists = {k: v for k, v in variables.items() if isinstance(v, list) and v}
    if not lists:
        return [variables]
    return [{**variables, **dict(zip(lists, combo, strict=True))} for combo in itertools.product(*lists.values())]


def _vars(raw: Any, source: Source, path: KeyPath, notes: Notes) -> dict[str, Any]:
    if raw is None:
        return {}
    if is_file_ref(raw):
        raw, source = read_document(ref_path(source.path.parent, raw))
        path = ()
    if not isinstance(raw, dict):
        notes.skip(source, path, "vars must be a mapping")
        return {}
    out = {}
    for key, value in raw.items():
        loaded = _var_value(value, source.path.parent, source, (*path, key), notes)
        if loaded is not _MISSING:
            out[str(key)] = loaded
    return out


_MISSING = object()


def _var_value(value: Any, base: Path, source: Source, path: KeyPath, notes: Notes) -> Any:
    if not is_file_ref(value):
        return value
    file = ref_path(base, value)
    if file.suffix.lower() in _CODE or not file.is_file():
        notes.skip(source, path, f"the var's file {shown(file)} is not converted (no such file, or code)")
        return _MISSING
    if file.suffix.lower() in (".yaml", ".yml", ".json"):
        data, _ = read_document(file, mapping=False)
        return json.dumps(data) if not isinstance(data, str) else data
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        notes.skip(source, path, f"the var's file {shown(file)} is not text (images and binaries are not converted)")
        return _MISSING


def _asserts(raw: Any, source: Source, path: KeyPath, notes: Notes) -> list[Assert]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.skip(source, path, "assert must be a list")
        return []
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            out.append(Assert(item, source, (*path, i)))
        else:
            notes.skip(source, (*path, i), "not an assertion ({type, value, ...})")
    return out


def _threshold(raw: dict[str, Any], source: Source, path: KeyPath, notes: Notes) -> float | None:
    value = raw.get("threshold")
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None if value is None else float(value)
    notes.skip(source, (*path, "threshold"), "not a number")
    return None


def _options(raw: dict[str, Any], source: Source, path: KeyPath, notes: Notes) -> Any:
    """The grading provider of ``options`` (other options are noted)."""
    options = raw.get("options")
    if not isinstance(options, dict):
        if options is not None:
            notes.skip(source, (*path, "options"), "not a mapping")
        return None
    for key in sorted(set(options) - {"provider"}):
        notes.skip(source, (*path, "options", key), "this test option has no llmopt form")
    return options.get("provider")


def _with_ids(tests: list[Test]) -> list[Test]:
    taken: set[str] = set()
    out = []
    for n, test in enumerate(tests, 1):
        base = _slug(test.description) if test.description else ""
        case_id = base if base and base not in taken else f"test-{n}"
        taken.add(case_id)
        out.append(Test(case_id, test.vars, test.asserts, test.description, test.threshold, test.grader))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]

"""Reader for YAML datasets: a list of mappings, loaded safely with line numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._plain import UnsupportedValue, to_plain
from ._readers import read_text
from ._rows import RawRow, RowsResult, kind_of

__all__ = ["read_yaml", "yaml_line"]


def read_yaml(path: Path, label: str) -> RowsResult:
    """Rows of a YAML list; the round-trip loader keeps each row's line number.

    The round-trip loader builds only plain data (unknown tags stay data), so no
    tag can construct an object.
    """
    text, problems = read_text(path, label)
    if problems:
        return [], problems
    data, problems = _parse(text, label)
    if problems or data is None:
        return [], problems
    if not isinstance(data, list):
        got = kind_of(data)
        return [], [f"{label}:1: a YAML dataset must be a list of mappings, got {got}"]
    return [_yaml_row(label, yaml_line(data, i), i, value) for i, value in enumerate(data)], []


def _yaml_row(label: str, line: int | None, index: int, value: Any) -> RawRow:
    """A row of the list, placed by line (or by index when the line is unknown)."""
    if line is None:
        where, ref, key = label, f"item {index + 1}", f"[{index}]"
    else:
        where, ref, key = f"{label}:{line}", f"line {line}", ""
    try:
        return RawRow(where, ref, to_plain(value), key)
    except UnsupportedValue as exc:
        return RawRow(where, ref, None, key, error=str(exc))
    except RecursionError:
        return RawRow(where, ref, None, key, error="values nest too deeply")


def _parse(text: str, label: str) -> tuple[Any, list[str]]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return YAML(typ="rt").load(text), []
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        message = exc.problem or exc.context or "cannot parse"
        return None, [f"{where}: invalid YAML: {message}"]
    except YAMLError as exc:
        return None, [f"{label}: invalid YAML: {exc}"]
    except RecursionError:
        return None, [f"{label}: invalid YAML: values nest too deeply"]


def yaml_line(sequence: Any, index: int) -> int | None:
    """The 1-based line of item ``index`` of a ruamel sequence, if it is known."""
    lc = getattr(sequence, "lc", None)
    try:
        return int(lc.item(index)[0]) + 1 if lc is not None else None
    except (KeyError, TypeError, AttributeError):
        return None

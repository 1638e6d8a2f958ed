"""Turn raw rows into cases: id and expected field mapping, duplicate ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._case import Case
from ._rows import RawRow, kind_of

if TYPE_CHECKING:
    from llmopt.spec._model import TaskSpec

__all__ = ["build_cases"]

#: Rows named in a "missing field" problem before the rest are left out.
_ROWS_NAMED = 5
_Missing = tuple[str, str]  # (option, field name): ("task.expected", "answer")


def build_cases(
    rows: Sequence[RawRow], task: TaskSpec, noun: str
) -> tuple[list[Case], list[str]]:
    """One case per row, plus every problem found (bad rows, duplicate ids).

    ``noun`` names what a row must be in messages ("a JSON object", "a mapping").
    Without ``task.id_field`` a case's id is its 1-based row number. A field named by
    the task that rows lack is one problem, at the first such row, naming how many.
    """
    cases: list[Case] = []
    problems: list[str] = []
    first_seen: dict[str, RawRow] = {}
    missing = _MissingFields()
    readable_rows = 0
    for number, row in enumerate(rows, start=1):
        errors = _shape_errors(row, noun)
        readable_rows += not errors
        case_id = None if errors else _case_id(row.value, number, task.id_field, errors)
        lacking = missing.add(row, [] if errors else _missing_fields(row, task), problems)
        if case_id is not None:
            first = first_seen.setdefault(case_id, row)
            if first is not row:
                errors.append(f"duplicate id {case_id!r} (first at {first.ref})")
        readable = row.error is None and isinstance(row.value, Mapping)
        relevant = _relevant(row.value, task.relevant_field, errors) if readable else None
        problems.extend(row.problem(e) for e in errors)
        if case_id is not None and not errors and not lacking:
            cases.append(_case(row, case_id, task.expected_field, relevant))
    missing.fill(problems, readable_rows)
    return cases, problems


class _MissingFields:
    """Rows that lack a field the task names, gathered into one problem per field."""

    def __init__(self) -> None:
        self.rows: dict[_Missing, list[RawRow]] = {}
        self.slots: dict[_Missing, int] = {}

    def add(self, row: RawRow, lacking: list[_Missing], problems: list[str]) -> bool:
        """Note ``row``'s missing fields (a place in ``problems`` for a new one); True when any."""
        for key in lacking:
            if key not in self.slots:
                self.slots[key] = len(problems)
                problems.append("")
            self.rows.setdefault(key, []).append(row)
        return bool(lacking)

    def fill(self, problems: list[str], readable: int) -> None:
        for key, slot in self.slots.items():
            problems[slot] = _missing_problem(key, self.rows[key], readable)


def _missing_fields(row: RawRow, task: TaskSpec) -> list[_Missing]:
    """The fields named by the task that a readable row (a mapping of named fields) lacks."""
    named = (("task.id", task.id_field), ("task.expected", task.expected_field), ("task.input", task.input_field))
    return [(option, name) for option, name in named if name is not None and name not in row.value]


def _missing_problem(key: _Missing, rows: list[RawRow], readable: int) -> str:
    option, name = key
    message = f"missing field {name!r} ({option})"
    if len(rows) == 1:
        return rows[0].problem(message)
    if len(rows) == readable:
        return rows[0].problem(f"{message} in every row ({readable} rows)")
    named = ", ".join(row.ref for row in rows[:_ROWS_NAMED]) + (", ..." if len(rows) > _ROWS_NAMED else "")
    return rows[0].problem(f"{message} in {len(rows)} rows: {named}")


def _case(row: RawRow, case_id: str, expected_field: str | None, relevant: tuple[str, ...] | None) -> Case:
    fields = dict(row.value)
    expected = fields.get(expected_field or "expected")
    return Case(id=case_id, fields=fields, expected=expected, source=row.where, relevant=relevant)


def _relevant(fields: Mapping[str, Any], field: str | None, errors: list[str]) -> tuple[str, ...] | None:
    """The relevant document ids of a row: a list of ids (or one id); None when absent."""
    value = fields.get(field) if field is not None else None
    if value is None:
        return None
    items = [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value
    if isinstance(items, (list, tuple)) and all(_is_id(item) for item in items):
        return tuple(dict.fromkeys(str(item) for item in items))
    errors.append(f"field {field!r} (task.relevant) must be a list of document ids, got {kind_of(value)}")
    return None


def _is_id(value: Any) -> bool:
    return (isinstance(value, str) and bool(value.strip())) or (isinstance(value, int) and not isinstance(value, bool))


def _shape_errors(row: RawRow, noun: str) -> list[str]:
    """Why a row is not a mapping of named fields at all, or an empty list."""
    if row.error is not None:
        return [row.error]
    if not isinstance(row.value, Mapping):
        return [f"a row must be {noun}, got {kind_of(row.value)}"]
    for name in row.value:
        if not isinstance(name, str):
            return [f"field names must be strings, got {kind_of(name)} {name!r}"]
    return []


def _case_id(
    fields: Mapping[str, Any], number: int, id_field: str | None, errors: list[str]
) -> str | None:
    """The case id (appending to ``errors`` when the id field's value is unusable)."""
    if id_field is None:
        return str(number)
    if id_field not in fields:
        return None
    value = fields[id_field]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        errors.append(
            f"field {id_field!r} (task.id) must be a string or a number, got {kind_of(value)}"
        )
        return None
    if isinstance(value, str) and not value.strip():
        errors.append(f"field {id_field!r} (task.id) is empty")
        return None
    return str(value)

"""Per-case checks grouped into llmopt assertions, with each case's values as fields."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ._asserts import Check, PythonCode, convert_assert
from ._notes import Notes
from ._tests import Test


@dataclass
class Slot:
    """One llmopt assertion: a check that some or all cases make, with their values."""

    metric: str
    args: dict[str, Any]
    kind: str
    values: dict[str, Any] = field(default_factory=dict)
    weights: set[float] = field(default_factory=set)
    python: PythonCode | None = None
    #: Where the slot's first assertion is written (source, key path).
    origin: Any = None


def slots_of(tests: list[Test], notes: Notes) -> list[Slot]:
    """The checks of every test, the n-th check of a kind in each test sharing a slot."""
    slots: dict[tuple[str, int], Slot] = {}
    for test in tests:
        seen: dict[str, int] = {}
        for item in test.asserts:
            check = convert_assert(item, test, notes)
            if check is None:
                continue
            key = _key(check)
            seen[key] = seen.get(key, 0) + 1
            fresh = Slot(check.metric, dict(check.args), check.kind, python=check.python, origin=(item.source, item.path))
            slot = slots.setdefault((key, seen[key]), fresh)
            slot.values[test.id] = check.value
            slot.weights.add(check.weight)
    return list(slots.values())


def _key(check: Check) -> str:
    return json.dumps([check.kind, check.metric, check.args, repr(check.python)], sort_keys=True, default=str)


def place_values(slots: list[Slot], tests: list[Test], taken: set[str]) -> dict[str, dict[str, Any]]:
    """Set each slot's value: in ``args.value`` when every case has the same one, else in
    a case field (``args.field``). Returns the fields to add to each case's row."""
    rows: dict[str, dict[str, Any]] = {test.id: {} for test in tests}
    for slot in slots:
        values = list(slot.values.values())
        uniform = len(slot.values) == len(tests) and all(_same(v, values[0]) for v in values)
        if uniform:
            if slot.python is None and not (slot.metric in ("is_json", "contains_json") and values[0] == {}):
                slot.args["value"] = values[0]
            continue
        name = _fresh("check_" + re.sub(r"[^a-z0-9]+", "_", slot.kind.lower()), taken)
        slot.args["field"] = name
        for case_id, value in slot.values.items():
            rows[case_id][name] = value
    return rows


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _fresh(name: str, taken: set[str]) -> str:
    found, n = name, 1
    while found in taken:
        n += 1
        found = f"{name}_{n}"
    taken.add(found)
    return found

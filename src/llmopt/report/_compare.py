"""Run-to-run changes: each scenario/variant/metric of two results documents side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from . import _doc as d
from ._direction import higher_is_better


@dataclass(frozen=True)
class Change:
    """One metric of one variant in the old run, the new run, or both."""

    scenario: str
    variant: str
    metric: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    higher_is_better: bool = True

    @property
    def change(self) -> float | None:
        if not self.old or not self.new or self.old.get("value") is None or self.new.get("value") is None:
            return None
        return float(self.new["value"]) - float(self.old["value"])

    @property
    def drop(self) -> float:
        """How much worse the new run is (0 when it is not worse)."""
        change = self.change
        if change is None:
            return 0.0
        return max(0.0, -change if self.higher_is_better else change)

    @property
    def apart(self) -> bool:
        """True when both runs have intervals and they do not overlap."""
        a, b = (self.old or {}).get("ci"), (self.new or {}).get("ci")
        if not a or not b:
            return False
        return bool(a[1] < b[0] or b[1] < a[0])


def _metrics(doc: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    return {
        (e["scenario"], name, key): m
        for e in doc.get("scenarios", [])
        for name, v in e.get("variants", {}).items()
        for key, m in (v.get("metrics") or {}).items()
    }


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every metric of either run, in the new run's order, then the ones only the old run
    had; each metric's direction is the new run's (the old run's for a gone metric)."""
    before, after = _metrics(old), _metrics(new)
    keys = list(after) + [k for k in before if k not in after]
    return [Change(*k, before.get(k), after.get(k), higher_is_better(after.get(k) or before.get(k))) for k in keys]


def _value(m: Mapping[str, Any] | None) -> str:
    if not m:
        return "(absent)"
    ci = d.fmt_ci(m.get("ci"))
    return d.fmt(m.get("value")) + ("" if ci == "-" else f" {ci}")


def _note(c: Change, fail_on_drop: float | None) -> str:
    if c.old is None or c.new is None:
        return "new" if c.old is None else "gone"
    notes = []
    if c.drop > 0:
        notes.append("worse")
    elif c.change:
        notes.append("better")
    if c.apart:
        notes.append("intervals apart")
    if fail_on_drop is not None and c.drop > fail_on_drop:
        notes.append(f"DROP > {fail_on_drop:g}")
    return ", ".join(notes)


def compare_rows(changes: Iterable[Change], fail_on_drop: float | None = None) -> list[tuple[str, ...]]:
    head: tuple[str, ...] = ("scenario", "variant", "metric", "old", "new", "change", "")
    return [head] + [
        (c.scenario, c.variant, c.metric, _value(c.old), _value(c.new), d.fmt(c.change, signed=True),
         _note(c, fail_on_drop))
        for c in changes
    ]


def text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]

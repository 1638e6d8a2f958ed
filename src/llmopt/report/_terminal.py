"""The terminal summary: scenario x variant x metric, with the verdicts."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

HEADER = ("variant", "metric", "value", "95% CI", "check", "result", "n", "errors", "cache", "cost $")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _ci(metric: dict[str, Any] | None) -> str:
    if not metric or not metric.get("ci"):
        return "-"
    low, high = metric["ci"]
    return f"[{low:.3f}, {high:.3f}]"


def _check_text(assertion: dict[str, Any]) -> str:
    text = assertion["expected"]
    if assertion.get("delta") is not None:
        text += f" (delta {assertion['delta']:+.3f})"
    return text


def scenario_rows(entry: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per (variant, metric, assertion); metrics without assertion shown once."""
    rows: list[tuple[str, ...]] = []
    for name, variant in entry["variants"].items():
        usage = variant.get("usage", {})
        cost = usage.get("cost_usd", 0.0) + usage.get("cached_cost_usd", 0.0)
        counts = (str(variant["n"]), str(variant["errors"]), str(usage.get("cache_hits", 0)), f"{cost:.4f}")
        checks = [a for a in entry["assertions"] if a["variant"] == name]
        for key, metric in variant["metrics"].items():
            mine = [a for a in checks if a["metric"] == key] or [None]
            for a in mine:
                check = _check_text(a) if a else ""
                result = a["outcome"].upper() if a else ""
                rows.append((name, key, _fmt(metric["value"]), _ci(metric), check, result, *counts))
        rows += [
            (name, a["metric"], "-", "-", a["expected"], a["outcome"].upper(), *counts)
            for a in checks
            if a["metric"] not in variant["metrics"]
        ]
    return rows


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def summary_lines(doc: dict[str, Any]) -> Iterable[str]:
    """The lines of the terminal summary for a results document."""
    for entry in doc["scenarios"]:
        yield f"{entry['scenario']}  ({entry['spec']})"
        rows = scenario_rows(entry)
        if not rows:
            yield "  (no results)"
            continue
        for line in _table([HEADER, *rows]):
            yield "  " + line
        yield ""

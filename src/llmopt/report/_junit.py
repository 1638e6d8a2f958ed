"""The numbers of an assertion item as JUnit properties (``--junitxml`` carries them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..assertion import Verdict
    from ..spec import AssertionSpec

#: Statistics of a verdict (``Verdict.stats_json``) written as properties when present.
STATS = ("kind", "confidence", "test", "p_value", "p_adjusted", "mde", "margin", "underpowered", "needed_n")


def add_junit_numbers(properties: list[tuple[str, object]], a: "AssertionSpec", verdict: "Verdict | None") -> None:
    """Append the threshold or delta asked for and, when checked, n, interval, p-value
    and power."""
    for key in ("min", "max", "min_delta", "max_drop", "vs"):
        value = getattr(a, key, None)
        if value is not None:
            properties.append((f"llmopt_{key}", value))
    if verdict is None:
        return
    properties.append(("llmopt_n", verdict.n))
    if verdict.interval is not None and verdict.interval.low is not None:
        properties.append(("llmopt_ci_low", _round(verdict.interval.low)))
        properties.append(("llmopt_ci_high", _round(verdict.interval.high)))
    stats = verdict.stats_json()
    properties.extend((f"llmopt_{name}", _round(stats[name])) for name in STATS if stats.get(name) is not None)
    baseline = stats.get("baseline") or {}
    if baseline.get("path"):
        properties.append(("llmopt_baseline", baseline["path"]))


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value

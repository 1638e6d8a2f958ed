"""The numbers of an assertion item as JUnit properties (``--junitxml`` carries them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..assertion import Verdict
    from ..spec import AssertionSpec

#: Verdict fields written when present (later statistics add them): property -> attribute.
OPTIONAL = {"p_value": "p_value", "p_adjusted": "p_adjusted", "test": "test", "kind": "kind", "mde": "mde",
            "underpowered": "underpowered", "needed_n": "needed_n", "confidence": "confidence"}


def add_junit_numbers(properties: list[tuple[str, object]], a: "AssertionSpec", verdict: "Verdict | None") -> None:
    """Append the threshold or delta asked for and, when checked, n, interval and p-value."""
    for key in ("min", "max", "min_delta", "vs"):
        value = getattr(a, key, None)
        if value is not None:
            properties.append((f"llmopt_{key}", value))
    if verdict is None:
        return
    properties.append(("llmopt_n", verdict.n))
    if verdict.interval is not None:
        properties.append(("llmopt_ci_low", _round(verdict.interval.low)))
        properties.append(("llmopt_ci_high", _round(verdict.interval.high)))
    for name, attr in OPTIONAL.items():
        value = getattr(verdict, attr, None)
        if value is not None:
            properties.append((f"llmopt_{name}", _round(value)))


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value

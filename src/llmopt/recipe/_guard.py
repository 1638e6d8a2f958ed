"""Guardrails: what every rendered prompt of a recipe version must respect."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..spec._model import Guardrails


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable regular expression, or None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"not a regular expression: {exc}"
    return None


def breaches(guardrails: "Guardrails", text: str) -> list[str]:
    """Every guardrail ``text`` breaks, each named with its setting."""
    found: list[str] = []
    if guardrails.max_length is not None and len(text) > guardrails.max_length:
        found.append(f"guardrail max_length ({guardrails.max_length}): the rendered prompt has {len(text)} characters")
    for phrase in guardrails.required:
        if phrase not in text:
            found.append(f"guardrail required ({phrase!r}): the rendered prompt does not contain it")
    for pattern in guardrails.forbidden:
        match = re.search(pattern, text, re.IGNORECASE)
        if match is not None:
            found.append(f"guardrail forbidden ({pattern!r}): the rendered prompt contains {_excerpt(match.group(0))!r}")
    return found


def _excerpt(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

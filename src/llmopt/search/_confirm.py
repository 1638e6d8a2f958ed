"""The confirmation's entry in the search's results, and the identity of a look."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..spec import SearchSpec
    from ._looks import Look
    from ._outcome import SearchOutcome

__all__ = ["confirmation_json", "confirmation_key"]


def confirmation_key(outcome: "SearchOutcome", vs: str) -> str:
    """What a confirmation confirms: the winner's overrides against ``vs`` (a rerun of
    the same confirmation is the same look)."""
    winner = outcome.winner.candidate.overrides if outcome.winner is not None else None
    text = json.dumps({"winner": winner, "vs": vs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def confirmation_json(search: "SearchSpec", outcome: dict[str, Any], look: "Look | None", candidates: int) -> dict[str, Any]:
    """``search.confirmation`` from the confirmation assertion's outcome."""
    stats = outcome.get("stats") or outcome
    observed, delta = outcome.get("observed"), outcome.get("delta")
    vs_value = observed - delta if isinstance(observed, (int, float)) and isinstance(delta, (int, float)) else None
    return {
        "variant": "search",
        "vs": search.confirm.vs,
        "metric": search.metric_key,
        "n": stats.get("n"),
        "value": observed,
        "vs_value": vs_value,
        "delta": delta,
        "ci": stats.get("ci"),
        "p": stats.get("p_value"),
        "p_adjusted": stats.get("p_adjusted"),
        "test": stats.get("test"),
        "confidence": search.confirm.confidence,
        "min_delta": search.confirm.min_delta,
        "outcome": outcome.get("outcome"),
        "looks": look.number if look is not None else None,
        "note": _note(look, candidates),
    }


def _note(look: "Look | None", candidates: int) -> str:
    if look is None:
        return "the confirmation did not run"
    if look.clean:
        return (f"one candidate of {candidates} reached the test split: the confirmation needs no correction "
                "for the number of candidates")
    return (f"look {look.number} on this test split: {look.number - 1} earlier winner(s) were confirmed on it, "
            "so this confirmation is not a first look and overstates its confidence")

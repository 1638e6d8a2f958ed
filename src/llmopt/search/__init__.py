"""Optimization search: candidate spaces, strategies (grid, random, halving), effects,
and the one confirmation of the winner on the locked test split.

``run_search(runner, scenario)`` scores the spec's candidates on dev only and returns a
:class:`SearchOutcome`; the winner then runs as variant ``search`` on test, where the
confirmation (an ordinary paired delta assertion) gates it. :class:`LooksLedger`
counts the confirmations made on each test split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._confirm import confirmation_json, confirmation_key
from ._looks import Look, LooksLedger, split_fingerprint
from ._outcome import CandidateRun, SearchOutcome
from ._run import SELECTION_NOTE, arun_search

if TYPE_CHECKING:
    from ..engine.runner import Runner
    from ..spec import Scenario, VariantSpec

__all__ = [
    "SELECTION_NOTE",
    "CandidateRun",
    "Look",
    "LooksLedger",
    "SearchOutcome",
    "arun_search",
    "confirmation_json",
    "confirmation_key",
    "run_search",
    "split_fingerprint",
    "winner_variant",
]


def run_search(runner: "Runner", scenario: "Scenario") -> SearchOutcome:
    """The search of ``scenario`` run to its end (from synchronous code)."""
    from ..engine.runner import run_sync

    return run_sync(lambda: arun_search(runner, scenario))


def winner_variant(outcome: SearchOutcome) -> "VariantSpec | None":
    """The winner as variant ``search``, reading the test split (evaluation's part)."""
    from dataclasses import replace

    if outcome.winner is None:
        return None
    variant = outcome.winner.candidate.variant
    return replace(variant, name="search", task=replace(variant.task, part=None))

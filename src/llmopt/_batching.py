"""The pytest side of batch mode (``--llmopt-batch``, ``model.batch: true``).

The phase runs once per process, when the first item is set up, over the variants
every selected item needs (its variant, its ``vs``, and with ``correction: holm`` the
variants of its family), so one wait covers the whole run. Under pytest-xdist every
worker runs it over the same selection: the ledger lets only one of them submit each
request and collect each batch, the others wait for it, and each then evaluates its
own items from the shared response cache.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pytest

from .errors import LLMOptError

if TYPE_CHECKING:
    from .engine.batch import BatchTarget, PhaseReport
    from .engine.runner import Runner
    from .spec import AssertionSpec, Scenario

__all__ = ["BATCH_MODES", "BatchRun", "batch_mode", "wants_batch"]

BATCH_MODES = ("on", "submit")


def batch_mode(config: pytest.Config, cache_mode: str) -> str | None:
    """``--llmopt-batch`` (None when not given); a UsageError beside a cache mode that
    cannot keep or read the answers."""
    mode = config.getoption("llmopt_batch", None)
    if mode is None:
        return None
    if cache_mode in ("off", "replay"):
        shown = "--llmopt-no-cache" if cache_mode == "off" else "--llmopt-cache=replay"
        raise pytest.UsageError(f"--llmopt-batch keeps the answers in the response cache: it cannot run with {shown}")
    return str(mode)


def wants_batch(scenario: "Scenario") -> bool:
    """Whether a model of the scenario (or a judge of its metrics) says ``batch: true``."""
    for variant in scenario.variants.values():
        if variant.model is not None and variant.model.batch:
            return True
    for assertion in scenario.assertions:
        judge = assertion.args.get("judge")
        if isinstance(judge, Mapping) and judge.get("batch") is True:
            return True
    return False


def targets_of(items: Sequence[Any], everywhere: bool) -> list["BatchTarget"]:
    """The variants the selected assertion items need, each once, in order."""
    from .engine.batch import BatchTarget

    seen: dict[tuple[str, str, str], BatchTarget] = {}
    for item in items:
        scenario = getattr(item, "scenario", None)
        assertion = getattr(item, "assertion", None)
        if scenario is None or assertion is None or not (everywhere or wants_batch(scenario)):
            continue
        for name in _needed(scenario, assertion):
            target = BatchTarget(scenario, name)
            seen.setdefault(target.key, target)
    return list(seen.values())


def _needed(scenario: "Scenario", assertion: "AssertionSpec") -> list[str]:
    names = [assertion.variant] + ([assertion.vs] if assertion.vs else [])
    if scenario.correction == "holm":
        names += [n for a in scenario.assertions if a.kind == "delta" for n in (a.variant, a.vs) if n]
    # The search's winner (variant ``search``) is not known before the search has run on
    # dev, and the search makes its own calls: neither goes through a batch.
    searched = "search" if scenario.search is not None else None
    return [n for n in names if n in scenario.variants and n != searched]


class BatchRun:
    """The run's batch phase: run once, its outcome (or error) kept for every item."""

    def __init__(self, mode: str | None, run_id: str | None, first_poll_s: float) -> None:
        self.mode = mode
        self.run_id = run_id or uuid.uuid4().hex
        self.first_poll_s = first_poll_s
        self._report: "PhaseReport | LLMOptError | None" = None

    def skip_reason(self, item: Any, runner: "Runner", note: Callable[[str], None]) -> str | None:
        """Run the phase on first use; the reason ``item`` waits for batches, or None."""
        if self._report is None:
            self._report = self._run(item.session.items, runner, note)
        if isinstance(self._report, LLMOptError):
            raise self._report
        names = [item.assertion.variant] + ([item.assertion.vs] if item.assertion.vs else [])
        waiting = sorted({b for n in names for b in self._report.waiting.get(_key(item.scenario, n), [])})
        if not waiting:
            return None
        shown = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
        return f"waiting for batch(es) {shown}: run again with --llmopt-batch to collect the answers"

    def _run(self, items: Sequence[Any], runner: "Runner", note: Callable[[str], None]) -> "PhaseReport | LLMOptError":
        from .engine.batch import BatchPhase, PhaseReport
        from .engine.batch_ledger import BatchLedger
        from .engine.runner import run_sync

        everywhere = self.mode is not None
        targets = targets_of(items, everywhere)
        if not targets or runner.cache is None:
            return PhaseReport()
        try:
            ledger = BatchLedger(runner.cache.directory, self.run_id, uuid.uuid4().hex)
            phase = BatchPhase(
                runner, ledger, everywhere=everywhere, wait=self.mode != "submit", note=note, first_poll_s=self.first_poll_s
            )
            report = run_sync(lambda: phase.arun(targets))
        except LLMOptError as exc:
            return LLMOptError(f"batch mode: {exc}")
        if report.requests or report.collected:
            note(report.line())
        return report


def _key(scenario: "Scenario", variant: str) -> tuple[str, str, str]:
    return (str(scenario.path), scenario.id, variant)

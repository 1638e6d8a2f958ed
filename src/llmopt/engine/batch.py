"""The batch phase: before any variant is evaluated, send what the providers' batch
APIs can carry as batches, at the batch price, and put every answer in the response
cache; evaluation then runs as usual, from the cache.

One round:

1. **collect**: evaluate every target variant with the gateway in its collection mode
   (:class:`~llmopt.engine.calls.CollectingCalls`): the runner's own prompt building
   renders each request, so it is byte for byte what evaluation sends, under the same
   cache key; requests the cache holds are skipped, nothing is called;
2. requests a recorded batch already holds (an interrupted run, another xdist worker)
   are waited for, not sent again;
3. **submit** the rest per batch API and model, split at its limits, each batch held
   against ``--llmopt-budget`` first (one that does not fit is not submitted: its
   requests are case errors naming the budget) and recorded in the ledger before
   anyone waits for it;
4. **wait**: poll (first after ``first_poll_s``, then backing off) with a progress
   line; an ended batch's answers go into the cache through the gateway, its failed,
   expired or cancelled requests become case errors with the provider's message.

Judge calls need the outputs, so a second round collects them (and a third a second
judge of the same case, ...), until a round finds nothing new. ``wait=False``
(``--llmopt-batch=submit``) submits, collects what has already ended, and returns
the targets still waiting, whose items are then skipped.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from ..errors import BudgetExceeded, LLMOptError, ProviderUnavailable
from .batch_ledger import BatchLedger
from .calls import BatchBook, ModelCalls, Pending

if TYPE_CHECKING:
    from ..provider import Response
    from ..provider._batch import BatchEntry, Batcher, BatchStatus
    from ..spec import Scenario
    from .runner import Runner

__all__ = ["BatchPhase", "BatchTarget", "PhaseReport", "RunBatches"]

#: Rounds at most: generations, then one per judge metric asked of the same case.
MAX_ROUNDS = 6
#: Polls back off by this factor up to ``max_poll_s``.
POLL_BACKOFF = 1.5
#: Failed polls in a row before the phase gives up (the batches stay recorded).
POLL_FAILURES = 5
#: Seconds after a batch ended before another worker of the run collects it in the
#: place of the one that should have (and died).
ORPHAN_AFTER_S = 120.0


@dataclass(frozen=True)
class BatchTarget:
    """A variant the selected items need."""

    scenario: "Scenario"
    variant: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (str(self.scenario.path), self.scenario.id, self.variant)


@dataclass
class PhaseReport:
    """What the phase did; ``waiting`` maps a target's key to the batches it waits for."""

    submitted: list[str] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)
    requests: int = 0
    answered: int = 0
    failed: int = 0
    waiting: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"llmopt batch: {self.requests} requests in {len(self.submitted)} new batch(es); "
            f"{self.answered} answered, {self.failed} failed, from {len(self.collected)} collected batch(es)"
        )


class RunBatches(BatchBook):
    """The gateway's view of this run's batches (see :class:`BatchBook`)."""

    def __init__(self, ledger: BatchLedger) -> None:
        self.ledger = ledger
        self._fresh: set[str] = set()
        self._failures: dict[str, str] = {}
        self.refused: dict[str, str] = {}

    def reload(self) -> None:
        self._fresh = self.ledger.fresh_keys()
        self._failures = {**self.ledger.failures(), **self.refused}

    def fresh(self, key: str) -> bool:
        return key in self._fresh

    def consume(self, key: str) -> bool:
        return key in self._fresh and self.ledger.consume(key)

    def failure(self, key: str) -> str | None:
        return self._failures.get(key)


@dataclass
class _Round:
    """The requests one collection pass found: by key, and each target's keys."""

    found: dict[str, Pending] = field(default_factory=dict)
    by_target: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    #: Some calls need this round's answers first (judges): another round follows.
    blocked: bool = False


class BatchPhase:
    """Runs the batch rounds for a runner (whose gateway keeps the answers)."""

    def __init__(
        self,
        runner: "Runner",
        ledger: BatchLedger,
        *,
        everywhere: bool,
        wait: bool = True,
        note: Callable[[str], None] = lambda line: None,
        first_poll_s: float = 1.0,
        max_poll_s: float = 60.0,
    ) -> None:
        self.runner = runner
        self.calls: ModelCalls = runner.calls
        self.ledger = ledger
        self.everywhere = everywhere
        self.wait = wait
        self.note = note
        self.first_poll_s = first_poll_s
        self.max_poll_s = max_poll_s
        self.book = RunBatches(ledger)
        self.report = PhaseReport()
        self._held: dict[str, float | None] = {}
        self._batchers: dict[str, "Batcher"] = {}
        #: Requests that could not be submitted (no key, no model): evaluation says why.
        self._unsent: set[str] = set()
        self._shown, self._shown_at = "", 0.0
        self._ended_at: dict[str, float] = {}

    async def arun(self, targets: Sequence[BatchTarget]) -> PhaseReport:
        """Every round until nothing new is found (or, not waiting, something waits)."""
        self.ledger.forget_other_runs()
        self.book.reload()
        self.calls.batch = self.book
        try:
            for _ in range(MAX_ROUNDS):
                found = await self._collect(targets)
                if not found.found or not await self._round(found) or not found.blocked:
                    break
        finally:
            await self._close()
        return self.report

    async def _round(self, found: _Round) -> bool:
        """Submit and wait for one round; False when nothing was sent or waited for,
        or when batches are still pending and the phase does not wait."""
        waiting = self.ledger.pending(found.found)
        for key, request in found.found.items():
            if key in waiting:
                self._batchers.setdefault(waiting[key], request.batcher)
        fresh = {k: p for k, p in found.found.items() if k not in waiting and k not in self._unsent}
        batches = set(waiting.values()) | await self._submit(fresh)
        if not batches:
            return False
        left = await self._follow(batches)
        self.book.reload()
        if left:
            members = {b: set(self.ledger.members(b)) for b in left}
            for target, keys in found.by_target.items():
                named = sorted(b for b, held in members.items() if keys & held)
                if named:
                    self.report.waiting[target] = named
            return False
        return True

    # -- 1. collect -----------------------------------------------------------------

    async def _collect(self, targets: Sequence[BatchTarget]) -> _Round:
        from .runner import Runner

        found = _Round()
        current: set[str] = set()

        def sink(pending: Pending) -> None:
            found.found.setdefault(pending.key, pending)
            current.add(pending.key)

        calls = self.calls.collecting(sink, everywhere=self.everywhere)
        collector = Runner(self.runner.registry, calls=calls, shard=self.runner.shard)
        for target in targets:
            current.clear()
            try:
                await collector.aevaluate(target.scenario, target.variant)
            except LLMOptError:  # the variant cannot run: its evaluation says why
                pass
            found.by_target[target.key] = set(current)
        found.blocked = calls.blocked
        return found

    # -- 3. submit ------------------------------------------------------------------

    async def _submit(self, fresh: Mapping[str, Pending]) -> set[str]:
        groups: dict[str, list[Pending]] = {}
        for pending in fresh.values():
            groups.setdefault(pending.batcher.group, []).append(pending)
        submitted: set[str] = set()
        for items in groups.values():
            batcher = items[0].batcher
            for chunk in _chunks(batcher, items):
                submitted |= await self._submit_chunk(batcher, chunk)
        return submitted

    async def _submit_chunk(self, batcher: "Batcher", chunk: Sequence[tuple[Pending, "BatchEntry"]]) -> set[str]:
        """The batches that now hold the chunk's requests: the one submitted, and
        those another process submitted meanwhile (waited for, not sent again)."""
        first = chunk[0][0].call
        what = f"a batch of {len(chunk)} request(s) to {first.provider_name} {first.provider.identity().get('model')}"
        try:
            held = self.calls.hold_batch(what, sum(batcher.estimate_cost(p.call.request) for p, _ in chunk), len(chunk))
        except BudgetExceeded as exc:
            self._refuse(chunk, str(exc))
            return set()
        with self.ledger.submitting():
            taken = self.ledger.pending(p.key for p, _ in chunk)
            for other in set(taken.values()):  # another worker sent them meanwhile
                self._batchers.setdefault(other, batcher)
            rest = [(p, e) for p, e in chunk if p.key not in taken]
            batch_id = await self._send(batcher, rest, what, held) if rest else None
        if batch_id is None:
            self.calls.settle_batch(held, 0.0)
            return set(taken.values())
        self.note(f"llmopt batch: submitted {batch_id} ({len(rest)} requests, {what[2:]})")
        return {batch_id, *taken.values()}

    async def _send(
        self, batcher: "Batcher", chunk: Sequence[tuple[Pending, "BatchEntry"]], what: str, held: float | None
    ) -> str | None:
        """Submit and record one batch (inside the ledger's lock); None when it could
        not be submitted (its requests are then case errors, or left to evaluation)."""
        try:
            batch_id = await batcher.submit([e for _, e in chunk])
        except ProviderUnavailable as exc:  # no key, no model, no batch API: left to evaluation
            self._unsent.update(p.key for p, _ in chunk)
            self.note(f"llmopt batch: {what} could not be submitted ({exc}); its requests are made one by one")
            return None
        except LLMOptError as exc:
            self._refuse(chunk, f"{what} could not be submitted: {exc}")
            return None
        provider_name = chunk[0][0].call.provider_name
        self.ledger.record(batch_id, batcher.group, provider_name, [p.key for p, _ in chunk], held or 0.0)
        self._held[batch_id] = held
        self._batchers[batch_id] = batcher
        self.report.submitted.append(batch_id)
        self.report.requests += len(chunk)
        return batch_id

    def _refuse(self, chunk: Iterable[tuple[Pending, "BatchEntry"]], message: str) -> None:
        for pending, _ in chunk:
            self.book.refused[pending.key] = self.calls.redacted(pending.call.provider, message)
        self.book.reload()

    # -- 4. wait --------------------------------------------------------------------

    async def _follow(self, batches: set[str]) -> set[str]:
        """Wait for (or, not waiting, look once at) the batches; those still pending."""
        left = set(batches)
        delay = self.first_poll_s if self.wait else 0.0
        failures = 0
        while left:
            await asyncio.sleep(delay)
            try:
                statuses = [await self._look(batch_id) for batch_id in sorted(left)]
                failures = 0
            except ProviderUnavailable:
                raise
            except LLMOptError as exc:
                failures += 1
                if failures >= POLL_FAILURES or not self.wait:
                    raise LLMOptError(
                        f"polling the batches failed {failures} time(s): {exc} (they stay recorded: run again to resume)"
                    ) from None
                self.note(f"llmopt batch: polling failed ({exc}); trying again")
                continue
            left = {s.id for s in statuses if s is not None and not s.ended}
            self._progress(statuses)
            if not self.wait:
                break
            delay = min(max(delay, 0.05) * POLL_BACKOFF, self.max_poll_s)
        return left

    def _progress(self, statuses: Sequence["BatchStatus | None"]) -> None:
        """The progress line, when it changed (or a minute passed)."""
        text = _progress(statuses)
        now = time.monotonic()
        if text != self._shown or now - self._shown_at >= 60.0:
            self.note(f"{text} at {time.strftime('%H:%M:%S')}")
            self._shown, self._shown_at = text, now

    async def _look(self, batch_id: str) -> "BatchStatus | None":
        """A batch's status; an ended batch is collected. Another process of this run
        collecting it: its ledger state (None once collected)."""
        from ..provider._batch import BatchStatus

        recorded = self.ledger.batch(batch_id)
        if recorded is None or recorded.state == "done":
            return BatchStatus(batch_id, "collected", True) if recorded is not None else None
        mine = recorded.owner == self.ledger.owner or self.ledger.claim(batch_id)
        batcher = self._batchers[batch_id]
        status = await batcher.status(batch_id)
        if not mine and not self._orphaned(batch_id, status):
            return BatchStatus(batch_id, f"{status.state}, collected by another worker", False, status.done, status.total)
        if status.ended:
            await self._store(batch_id, batcher, status)
        return status

    def _orphaned(self, batch_id: str, status: "BatchStatus") -> bool:
        """Whether this process takes over a batch another process of the run was to
        collect: it ended ``ORPHAN_AFTER_S`` ago and is still not collected (that
        process died)."""
        if not status.ended:
            return False
        seen = self._ended_at.setdefault(batch_id, time.monotonic())
        return time.monotonic() - seen >= ORPHAN_AFTER_S and self.ledger.take_over(batch_id)

    async def _store(self, batch_id: str, batcher: "Batcher", status: "BatchStatus") -> None:
        outcomes = {o.custom_id: o for o in await batcher.results(batch_id)}
        provider = batcher.provider  # type: ignore[attr-defined]
        answers: list[tuple[str, "Response"]] = []
        failures: dict[str, str] = {}
        for key in self.ledger.members(batch_id):
            outcome = outcomes.get(key)
            if outcome is not None and outcome.response is not None:
                answers.append((key, outcome.response))
            else:
                why = outcome.error if outcome is not None and outcome.error else _missing(batch_id, status)
                failures[key] = self.calls.redacted(provider, why)
        self.calls.store_batch(provider, answers)
        self.calls.settle_batch(self._held.pop(batch_id, None), sum(r.cost_usd for _, r in answers))
        answered = [key for key, _ in answers]
        self.ledger.finish(batch_id, answered, failures)
        self.report.collected.append(batch_id)
        self.report.answered += len(answered)
        self.report.failed += len(failures)

    async def _close(self) -> None:
        closed: set[int] = set()
        for batcher in self._batchers.values():
            if id(batcher) not in closed:
                closed.add(id(batcher))
                await batcher.aclose()


def _chunks(batcher: "Batcher", items: Sequence[Pending]) -> list[list[tuple[Pending, "BatchEntry"]]]:
    """``items`` as batch entries, split at the batch API's request and byte limits."""
    chunks: list[list[tuple[Pending, "BatchEntry"]]] = [[]]
    size = 0
    for pending in items:
        entry = batcher.entry(pending.key, pending.call.request)
        full = len(chunks[-1]) >= batcher.limits.requests or size + entry.size > batcher.limits.bytes
        if chunks[-1] and full:
            chunks.append([])
            size = 0
        chunks[-1].append((pending, entry))
        size += entry.size
    return [chunk for chunk in chunks if chunk]


def _missing(batch_id: str, status: "BatchStatus") -> str:
    why = f": {status.message}" if status.message else ""
    return f"the batch {batch_id} ended ({status.state}) without an answer for this request{why}"


def _progress(statuses: Sequence["BatchStatus | None"]) -> str:
    shown = [s for s in statuses if s is not None]
    done = sum(s.done for s in shown)
    total = sum(s.total for s in shown)
    parts = ", ".join(f"{s.id} {s.state} {s.done}/{s.total}" for s in shown[:6])
    more = f", ... ({len(shown)} batches)" if len(shown) > 6 else ""
    return f"llmopt batch: {done}/{total} requests done ({parts}{more})"

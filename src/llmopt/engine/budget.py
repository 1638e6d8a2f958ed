"""A spending limit for one run: no new provider call once the budget is used up."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol

from ..errors import BudgetExceeded, LLMOptError

__all__ = ["Budget", "CallLimit", "FileLedger", "Ledger", "MemoryLedger"]


class Ledger(Protocol):
    """Where a run's spend (and the cost of the calls in flight) is added up."""

    def spent(self) -> float:
        """USD spent so far by the whole run."""

    def state(self) -> tuple[float, float]:
        """(USD spent, USD held by the calls in flight) of the whole run."""

    def add(self, cost_usd: float) -> None:
        """Record the cost of one call."""

    def reserve(self, estimate_usd: float, limit_usd: float) -> float | None:
        """Hold ``estimate_usd`` for a call about to be sent, when what is spent and held
        leaves room for it under ``limit_usd``; return the spend then, or None when
        there is no room."""

    def settle(self, estimate_usd: float, cost_usd: float) -> None:
        """Release a held estimate and record what the call really cost."""


class MemoryLedger:
    """The spend of a run made by one process."""

    def __init__(self) -> None:
        self._spent = 0.0
        self._held = 0.0
        self._lock = threading.Lock()

    def spent(self) -> float:
        return self._spent

    def state(self) -> tuple[float, float]:
        with self._lock:
            return self._spent, self._held

    def add(self, cost_usd: float) -> None:
        with self._lock:
            self._spent += cost_usd

    def reserve(self, estimate_usd: float, limit_usd: float) -> float | None:
        with self._lock:
            if not _room(self._spent, self._held, estimate_usd, limit_usd):
                return None
            self._held += estimate_usd
            return self._spent

    def settle(self, estimate_usd: float, cost_usd: float) -> None:
        with self._lock:
            self._held = max(0.0, self._held - estimate_usd)
            self._spent += cost_usd


def _fits_later(spent: float, held: float, estimate: float, limit: float) -> bool:
    """Whether a call that does not fit now would fit once the calls in flight settle
    (they cost at most their estimates, when estimates are upper bounds)."""
    return held > 0 and spent < limit and spent + estimate <= limit


def _room(spent: float, held: float, estimate: float, limit: float) -> bool:
    """Whether a call estimated at ``estimate`` may start: nothing is over the limit,
    and the estimate fits beside what is spent and held (a call with no estimate
    may start while anything is left)."""
    return spent + held < limit and spent + held + estimate <= limit


class FileLedger:
    """The spend of a run shared by its processes (pytest-xdist workers): one SQLite
    row that every process adds to in its own transaction, so the budget holds for
    the run as a whole, not per worker.

    The controller makes the file (``create=True``) before any worker starts; workers
    only open it, so no two processes race to set it up.
    """

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        with self._lock, self._errors():
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
            if create:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS spend (id INTEGER PRIMARY KEY CHECK (id = 1), usd REAL, held REAL)"
                )
                self._db.execute("INSERT OR IGNORE INTO spend VALUES (1, 0.0, 0.0)")

    def spent(self) -> float:
        return self.state()[0]

    def state(self) -> tuple[float, float]:
        with self._lock, self._errors():
            spent, held = self._db.execute("SELECT usd, held FROM spend WHERE id = 1").fetchone()
            return float(spent), float(held)

    def add(self, cost_usd: float) -> None:
        if cost_usd:
            with self._lock, self._errors():
                self._db.execute("UPDATE spend SET usd = usd + ? WHERE id = 1", (cost_usd,))

    def reserve(self, estimate_usd: float, limit_usd: float) -> float | None:
        with self._lock, self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                spent, held = self._db.execute("SELECT usd, held FROM spend WHERE id = 1").fetchone()
                if not _room(float(spent), float(held), estimate_usd, limit_usd):
                    return None
                self._db.execute("UPDATE spend SET held = held + ? WHERE id = 1", (estimate_usd,))
                return float(spent)
            finally:
                self._db.execute("COMMIT")

    def settle(self, estimate_usd: float, cost_usd: float) -> None:
        with self._lock, self._errors():
            self._db.execute(
                "UPDATE spend SET held = MAX(0.0, held - ?), usd = usd + ? WHERE id = 1", (estimate_usd, cost_usd)
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, TypeError) as exc:  # TypeError: no row, the file was not created
            raise LLMOptError(f"the run's budget ledger {self.path} cannot be used ({exc})") from exc


class Budget:
    """A run's spending limit in USD (cache hits cost nothing).

    Before a call is sent, its estimated cost is held against the limit (see
    :meth:`hold`); when it returns, the estimate is released and the real cost
    recorded. A call whose estimate does not fit waits while the calls in flight hold
    what it needs, and is refused once it cannot fit. So the spend can pass the limit
    only by what the calls in flight cost beyond their estimates (under pytest-xdist:
    those of every worker): never, when the estimates are upper bounds.
    """

    #: Longest wait for the calls in flight to release what a call needs (a worker
    #: killed with its calls in flight never releases them).
    patience_s: float = 120.0

    def __init__(self, limit_usd: float, ledger: Ledger | None = None) -> None:
        self.limit_usd = limit_usd
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.refused = 0
        self._lock = threading.Lock()

    @property
    def spent_usd(self) -> float:
        return self.ledger.spent()

    async def hold(self, where: str, estimate_usd: float) -> float:
        """Hold ``estimate_usd`` for a call, waiting while the calls in flight hold
        what it needs; BudgetExceeded once it cannot fit (or after ``patience_s``)."""
        estimate = max(0.0, estimate_usd)
        give_up = time.monotonic() + self.patience_s
        pause = 0.002
        while self.ledger.reserve(estimate, self.limit_usd) is None:
            if not _fits_later(*self.ledger.state(), estimate, self.limit_usd) or time.monotonic() > give_up:
                self._refuse(where, estimate)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
        return estimate

    def hold_now(self, where: str, estimate_usd: float, calls: int = 1) -> float:
        """Hold ``estimate_usd`` for ``calls`` calls sent at once (a batch) without
        waiting; BudgetExceeded, counting the calls as not made, when it does not fit."""
        estimate = max(0.0, estimate_usd)
        if self.ledger.reserve(estimate, self.limit_usd) is None:
            with self._lock:
                self.refused += calls
            raise BudgetExceeded(
                f"{where}: not submitted: estimated at ${estimate:.4f}, it would pass the run's budget of "
                f"${self.limit_usd:.4f} (${self.ledger.spent():.4f} spent; --llmopt-budget)"
            )
        return estimate

    def _refuse(self, where: str, estimate: float) -> None:
        with self._lock:
            self.refused += 1
        raise BudgetExceeded(
            f"{where}: not called: the run's budget of ${self.limit_usd:.4f} "
            f"is used up (${self.ledger.spent():.4f} spent{_held(estimate)}; --llmopt-budget)"
        )

    def release(self, estimate_usd: float, cost_usd: float) -> None:
        """Release a held estimate and record the call's real cost."""
        self.ledger.settle(estimate_usd, cost_usd)

    @property
    def exhausted(self) -> bool:
        return self.refused > 0


def _held(estimate: float) -> str:
    return f", this call estimated at ${estimate:.4f}" if estimate else ""


class CallLimit:
    """A limit on the calls one piece of work makes (a search's ``budget``): at most
    ``calls`` model calls and ``usd`` dollars, reserved before each call so the calls in
    flight can never exceed it. Cached answers are free and never counted."""

    def __init__(self, calls: int | None = None, usd: float | None = None, label: str = "the search's budget") -> None:
        self.calls_limit = calls
        self.usd_limit = usd
        self.label = label
        self.made = 0
        self.spent = 0.0
        self.refused = 0
        self._held_calls = 0
        self._held_usd = 0.0
        self._lock = threading.Lock()

    def take(self, what: str, estimate_usd: float) -> None:
        """Hold one call and its estimate; BudgetExceeded when either would pass the limit."""
        with self._lock:
            calls_full = self.calls_limit is not None and self.made + self._held_calls + 1 > self.calls_limit
            usd_full = self.usd_limit is not None and self.spent + self._held_usd + estimate_usd > self.usd_limit + 1e-12
            if calls_full or usd_full:
                self.refused += 1
                raise BudgetExceeded(f"{what}: {self.label} ({self.describe()}) is used up: call not made")
            self._held_calls += 1
            self._held_usd += estimate_usd

    def settle(self, estimate_usd: float, cost_usd: float, made: bool = True) -> None:
        """Release a held call: count it (when it was sent) and what it cost."""
        with self._lock:
            self._held_calls -= 1
            self._held_usd = max(0.0, self._held_usd - estimate_usd)
            self.made += int(made)
            self.spent += cost_usd

    @property
    def exhausted(self) -> bool:
        return self.refused > 0

    def describe(self) -> str:
        parts = []
        if self.calls_limit is not None:
            parts.append(f"{self.calls_limit} calls")
        if self.usd_limit is not None:
            parts.append(f"${self.usd_limit:g}")
        return ", ".join(parts) or "no limit"

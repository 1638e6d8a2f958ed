"""A spending limit for one run: no new provider call once the budget is used up."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol

from .errors import BudgetExceeded, LLMOptError
from .results import Usage

__all__ = ["Account", "Budget", "FileLedger", "Ledger", "MemoryLedger"]


class Ledger(Protocol):
    """Where a run's spend is added up."""

    def spent(self) -> float:
        """USD spent so far by the whole run."""

    def add(self, cost_usd: float) -> None:
        """Record the cost of one call."""


class MemoryLedger:
    """The spend of a run made by one process."""

    def __init__(self) -> None:
        self._spent = 0.0
        self._lock = threading.Lock()

    def spent(self) -> float:
        return self._spent

    def add(self, cost_usd: float) -> None:
        with self._lock:
            self._spent += cost_usd


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
                self._db.execute("CREATE TABLE IF NOT EXISTS spend (id INTEGER PRIMARY KEY CHECK (id = 1), usd REAL)")
                self._db.execute("INSERT OR IGNORE INTO spend VALUES (1, 0.0)")

    def spent(self) -> float:
        with self._lock, self._errors():
            return float(self._db.execute("SELECT usd FROM spend WHERE id = 1").fetchone()[0])

    def add(self, cost_usd: float) -> None:
        if cost_usd:
            with self._lock, self._errors():
                self._db.execute("UPDATE spend SET usd = usd + ? WHERE id = 1", (cost_usd,))

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
    """Tracks the USD spent by provider calls (cache hits cost nothing).

    With concurrency, calls already in flight when the limit is reached still finish,
    so the spend can pass the limit by at most those calls (under pytest-xdist: those
    of every worker).
    """

    def __init__(self, limit_usd: float, ledger: Ledger | None = None) -> None:
        self.limit_usd = limit_usd
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.refused = 0
        self._lock = threading.Lock()

    @property
    def spent_usd(self) -> float:
        return self.ledger.spent()

    def before_call(self, where: str) -> None:
        """Raise BudgetExceeded when no new call may be made."""
        spent = self.ledger.spent()
        if spent >= self.limit_usd:
            with self._lock:
                self.refused += 1
            raise BudgetExceeded(
                f"{where}: not called: the run's budget of ${self.limit_usd:.4f} "
                f"is used up (${spent:.4f} spent; --llmopt-budget)"
            )

    def add(self, cost_usd: float) -> None:
        self.ledger.add(cost_usd)

    @property
    def exhausted(self) -> bool:
        return self.refused > 0


class Account:
    """What calls made for retrieval (embeddings of chunks and queries) use: checked
    against the run's budget before each call, and added up for the results."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget
        self._usage = Usage()
        self._lock = threading.Lock()

    @property
    def usage(self) -> Usage:
        with self._lock:
            return self._usage

    def before_call(self, where: str) -> None:
        """Raise BudgetExceeded when the run's budget allows no new call."""
        if self.budget is not None:
            self.budget.before_call(where)

    def add(self, usage: Usage) -> None:
        with self._lock:
            self._usage = self._usage + usage
        if self.budget is not None:
            self.budget.add(usage.cost_usd)

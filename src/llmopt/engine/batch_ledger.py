"""The ledger of submitted batches: ``<cache dir>/batches.sqlite3``, beside the
response cache, in WAL mode so pytest-xdist workers and later runs share it.

A batch id is recorded with the cache keys of its requests before anyone waits for it,
so a run that is interrupted and started again resumes the same batches instead of
paying twice. Per run (an id shared by the run's xdist workers) it also keeps which
keys its batches answered (``fresh``: the first call that reads one pays for it, once,
whichever process makes it) and which they failed, with the provider's message.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from ..errors import LLMOptError

__all__ = ["BatchLedger", "LEDGER_FILE_NAME", "RecordedBatch"]

LEDGER_FILE_NAME = "batches.sqlite3"
#: How long a process waits for another one's submission to be recorded.
_LOCK_TIMEOUT_S = 3600.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, grp TEXT NOT NULL, provider TEXT NOT NULL,"
    " state TEXT NOT NULL, run TEXT NOT NULL, owner TEXT NOT NULL, held REAL NOT NULL, total INTEGER NOT NULL,"
    " created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS members (key TEXT NOT NULL, batch TEXT NOT NULL, PRIMARY KEY (key, batch))",
    "CREATE INDEX IF NOT EXISTS members_batch ON members (batch)",
    "CREATE TABLE IF NOT EXISTS fresh (key TEXT PRIMARY KEY, run TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS failures (key TEXT NOT NULL, run TEXT NOT NULL, message TEXT NOT NULL,"
    " PRIMARY KEY (key, run))",
)
_CHUNK = 500


class RecordedBatch:
    """One row of the ledger."""

    def __init__(self, id: str, group: str, state: str, run: str, owner: str, held: float, total: int) -> None:
        self.id, self.group, self.state, self.run, self.owner = id, group, state, run, owner
        self.held, self.total = held, total


class BatchLedger:
    """The batches of a project; ``run`` names this run, ``owner`` this process."""

    def __init__(self, directory: Path, run: str, owner: str) -> None:
        self.path = Path(directory) / LEDGER_FILE_NAME
        self.run = run
        self.owner = owner
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            _set_up(self._db)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from exc

    # -- batches --------------------------------------------------------------------

    def pending(self, keys: Iterable[str]) -> dict[str, str]:
        """Of ``keys``, those a batch not yet collected holds: key -> batch id."""
        found: dict[str, str] = {}
        wanted = list(keys)
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._rows(
                f"SELECT m.key, m.batch FROM members m JOIN batches b ON b.id = m.batch"
                f" WHERE b.state = 'pending' AND m.key IN ({marks})",
                part,
            )
            found.update({key: batch for key, batch in rows})
        return found

    def record(self, batch_id: str, group: str, provider: str, keys: Sequence[str], held: float) -> None:
        """Record a submitted batch and its requests' keys (before anyone waits for it)."""
        with self._lock, self._errors(), self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                (batch_id, group, provider, self.run, self.owner, held, len(keys), time.time()),
            )
            self._db.executemany("INSERT OR IGNORE INTO members VALUES (?, ?)", [(k, batch_id) for k in keys])

    def batch(self, batch_id: str) -> RecordedBatch | None:
        rows = self._rows("SELECT id, grp, state, run, owner, held, total FROM batches WHERE id = ?", [batch_id])
        return RecordedBatch(*rows[0]) if rows else None

    def claim(self, batch_id: str) -> bool:
        """Make this process the one that collects (and pays for) a batch an earlier
        run submitted; False when this run already has a collector for it."""
        with self._lock, self._errors():
            cursor = self._db.execute(
                "UPDATE batches SET run = ?, owner = ?, held = 0.0 WHERE id = ? AND run <> ? AND state = 'pending'",
                (self.run, self.owner, batch_id, self.run),
            )
            return cursor.rowcount == 1

    def take_over(self, batch_id: str) -> bool:
        """Make this process the collector of a batch of this run whose collector is
        gone; False when it was collected meanwhile."""
        with self._lock, self._errors():
            cursor = self._db.execute(
                "UPDATE batches SET owner = ? WHERE id = ? AND state = 'pending'", (self.owner, batch_id)
            )
            return cursor.rowcount == 1

    def members(self, batch_id: str) -> list[str]:
        return [row[0] for row in self._rows("SELECT key FROM members WHERE batch = ?", [batch_id])]

    def finish(self, batch_id: str, answered: Sequence[str], failures: Mapping[str, str]) -> None:
        """A collected batch: its answers are in the response cache; mark them this
        run's (to be paid for once) and keep its failures, in one transaction."""
        with self._lock, self._errors(), self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO fresh VALUES (?, ?)", [(k, self.run) for k in answered])
            self._db.executemany(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", [(k, self.run, m) for k, m in failures.items()]
            )
            self._db.execute("UPDATE batches SET state = 'done' WHERE id = ?", (batch_id,))

    @contextmanager
    def submitting(self) -> Iterator[None]:
        """Hold the ledger while deciding what to submit and recording it, so two
        processes never submit the same request."""
        with self._lock:
            with self._errors():
                self._db.execute(f"PRAGMA busy_timeout = {int(_LOCK_TIMEOUT_S * 1000)}")
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("PRAGMA busy_timeout = 30000")
            try:
                yield
            finally:
                with self._errors():
                    self._db.execute("COMMIT")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction of its own, or a part of the one already open."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    # -- this run's answers and failures --------------------------------------------

    def fresh_keys(self) -> set[str]:
        return {row[0] for row in self._rows("SELECT key FROM fresh WHERE run = ?", [self.run])}

    def consume(self, key: str) -> bool:
        """True once per run for a key this run's batches answered."""
        with self._lock, self._errors():
            cursor = self._db.execute("DELETE FROM fresh WHERE key = ? AND run = ?", (key, self.run))
            return cursor.rowcount == 1

    def failures(self) -> dict[str, str]:
        return dict(self._rows("SELECT key, message FROM failures WHERE run = ?", [self.run]))

    def forget_other_runs(self) -> None:
        """Drop what earlier runs' batches answered or failed (their calls are past)."""
        with self._lock, self._errors():
            self._db.execute("DELETE FROM fresh WHERE run <> ?", (self.run,))
            self._db.execute("DELETE FROM failures WHERE run <> ?", (self.run,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, args: Sequence[object]) -> list[tuple]:
        with self._lock, self._errors():
            return list(self._db.execute(sql, list(args)).fetchall())

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> LLMOptError:
        return LLMOptError(f"the batch ledger {self.path} cannot be used ({exc}); delete it to forget the batches it records")


def _set_up(db: sqlite3.Connection, patience_s: float = 30.0) -> None:
    """WAL mode and the tables. Switching to WAL while another process (an xdist
    worker) creates the same file can be refused at once as locked, without SQLite's
    busy wait: such a refusal is retried for up to ``patience_s``."""
    import time

    deadline = time.monotonic() + patience_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, no fsync per commit
            for statement in _SCHEMA:
                db.execute(statement)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)

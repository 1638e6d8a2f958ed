"""The response cache: provider answers stored in SQLite, shared by parallel workers.

One file, ``<directory>/responses.sqlite3``, in WAL mode so several pytest-xdist
worker processes can read and write it at once; SQLite's own locking (with a
generous busy timeout) does all the coordination. Within a process one connection
is shared by every thread under a lock.

A hit returns the stored response marked ``cached=True`` with the original call's
latency and usage, so reports can tell cached figures apart.

Writes are gathered and committed together: one transaction per ``_FLUSH_ROWS``
answers, or for whatever waited ``_FLUSH_AFTER_S`` by the next write, and at the end
of every evaluation, on ``close`` and at the process's exit. A commit per answer cost
about 0.5 ms of the event loop's time (bench/scale.py); answers still waiting are read
back from memory by this process, and reach other processes at the next commit.

Lookups share one read transaction for up to ``_FLUSH_AFTER_S`` (a commit or the end
of an evaluation ends it sooner), so a lookup sees what other processes committed
until at most that long before it, as they see this one's answers; a read
transaction of its own per lookup took about a third of the lookup's time.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import LLMOptError
from ..provider._base import Request, Response

__all__ = ["ResponseCache", "RequestKeys", "request_identity", "canonical_json", "CACHE_FILE_NAME"]

CACHE_FILE_NAME = "responses.sqlite3"
_BUSY_TIMEOUT_S = 30.0
#: Answers committed in one transaction at most, and how long one may wait for it.
_FLUSH_ROWS = 256
_FLUSH_AFTER_S = 0.25
#: WAL pages (4 KiB) a commit lets pile up before it copies them into the database
#: (SQLite's default: 1,000). Keys are hashes, so each answer lands on its own page of
#: the key index and a commit of 256 answers writes some 250 pages; a copy every 4
#: commits, each with its fsync, cost about half of a commit's time in a 100,000-case
#: run (bench/scale.py). Ten times fewer copies write the pages changed again
#: meanwhile once; the log file grows to about 40 MB, and is removed when the last
#: connection closes.
_CHECKPOINT_PAGES = 10_000
_INSERT = "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses ("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL,"
    " created REAL NOT NULL)"
)
_STORED_FIELDS = (
    "text", "latency_s", "input_tokens", "output_tokens", "cached_input_tokens", "model", "cost_usd", "metadata",
)


def request_identity(
    provider: str,
    identity: Mapping[str, Any],
    request: Request,
    *,
    include_case: bool = False,
) -> dict[str, Any]:
    """The canonical mapping a cached response is filed under.

    It holds the provider name, the provider's identity (model id, file hash, base
    URL), the params, the messages and the repeat index. The case's fields and the
    retrieved context are added only when ``include_case`` is set, for providers
    (like the user's own code) that see more of the request than the messages.
    """
    data: dict[str, Any] = {
        "provider": provider,
        "identity": dict(identity),
        "params": dict(request.params),
        "messages": [dict(m) for m in request.messages],
        "repeat": request.repeat,
    }
    if include_case:
        data["case"] = dict(request.case.fields)
        data["context"] = request.context
    return data


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


#: Made once: ``json.dumps`` with options builds a new encoder on every call, which
#: cost more than encoding a request's few fields (bench/scale.py).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)
_STORED = json.JSONEncoder(default=dict)


def canonical_json(data: Mapping[str, Any]) -> str:
    """JSON with sorted keys and no whitespace: equal mappings give equal text."""
    return _CANONICAL.encode(data)


class RequestKeys:
    """Cache keys of requests, each the same text as
    ``ResponseCache.key(request_identity(...))``, made cheaper: the canonical JSON of
    the provider, its identity and the params (the same for a variant's every case) is
    kept per provider name, checked equal to the call's own each time, and the
    request's own parts are put around it. Building the identity mapping and encoding
    it whole took about 9 us a call (bench/scale.py)."""

    def __init__(self) -> None:
        #: (provider name, case included) -> (identity, params, text before the
        #: messages, text after them up to the repeat).
        self._parts: dict[tuple[str, bool], tuple[dict[str, Any], dict[str, Any], str, str]] = {}

    def key(self, provider: str, identity: Mapping[str, Any], request: Request, *, include_case: bool = False) -> str:
        """The sha256 of the request identity's canonical JSON (see ``request_identity``)."""
        found = self._parts.get((provider, include_case))
        if found is None or found[0] != identity or found[1] != request.params:
            found = self._parts[(provider, include_case)] = _key_parts(provider, identity, request.params)
        messages = request.messages
        if type(messages) is not list and type(messages) is not tuple:
            messages = list(messages)
        repeat = request.repeat
        text = found[2] + _CANONICAL.encode(messages) + found[3] + (
            str(repeat) if type(repeat) is int else _CANONICAL.encode(repeat)
        ) + "}"
        if include_case:  # "case" and "context" sort before "identity"
            text = (
                '{"case":' + _CANONICAL.encode(dict(request.case.fields)) + ',"context":'
                + _CANONICAL.encode(request.context) + "," + text[1:]
            )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key_parts(
    provider: str, identity: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    kept_identity, kept_params = dict(identity), dict(params)
    head = '{"identity":' + _CANONICAL.encode(kept_identity) + ',"messages":'
    tail = ',"params":' + _CANONICAL.encode(kept_params) + ',"provider":' + _CANONICAL.encode(provider) + ',"repeat":'
    return kept_identity, kept_params, head, tail


class ResponseCache:
    """Provider responses by request key, in ``<directory>/responses.sqlite3``.

    The file is opened on first use; the directory is created on the first write.
    ``hits``, ``misses`` and ``writes`` count what this instance did.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CACHE_FILE_NAME
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._conn: sqlite3.Connection | None = None
        #: Since when the lookups share their read transaction (None: none open).
        self._reading_since: float | None = None
        # Caches on one file in this process share what waits (and the lock over it),
        # so each reads what another wrote before it is committed.
        self._waiting = _waiting_for(self.path)
        self._lock = self._waiting.lock
        #: Written but not yet committed: key -> (stored value, time written).
        self._pending = self._waiting.rows
        # Dropped without close, or still open at the exit: what waits is committed then.
        weakref.finalize(self, _commit_left, self.path, self._pending)

    def key(self, request_identity: Mapping[str, Any]) -> str:
        """The sha256 of the canonical JSON of a request identity."""
        return hashlib.sha256(canonical_json(request_identity).encode("utf-8")).hexdigest()

    def get(self, key: str) -> Response | None:
        """The stored response for ``key`` (marked cached), or None."""
        with self._lock:
            waiting = self._pending.get(key)
            row = (waiting[0],) if waiting is not None else self._fetch(key)
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return self._decode(row)

    def put(self, key: str, response: Response) -> None:
        """Store ``response`` under ``key`` (replacing an older value), committed with
        the answers written around it (see the module's note)."""
        value = _stored(response)
        with self._lock:
            self._connection(create=True)  # an unusable file shows at the first write
            now = time.monotonic()
            if not self._pending:
                self._waiting.since = now
            self._pending[key] = (value, time.time())
            self.writes += 1
            if len(self._pending) >= _FLUSH_ROWS or now - self._waiting.since >= _FLUSH_AFTER_S:
                self._commit()

    def put_many(self, items: "Sequence[tuple[str, Response]]") -> None:
        """Store many responses in one transaction (a batch's answers)."""
        with self._lock:
            for key, response in items:
                self._pending[key] = (_stored(response), time.time())
            self.writes += len(items)
            self._commit()

    def flush(self) -> None:
        """Commit the answers written so far (the runner does after every evaluation)."""
        with self._lock:
            self._commit()
            self._end_reading(self._conn)

    def close(self) -> None:
        """Commit what waits and close the connection (the cache reopens it if used again)."""
        with self._lock:
            try:
                self._commit()
                self._end_reading(self._conn)
            finally:
                self._reading_since = None
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def _commit(self) -> None:
        """One transaction for every waiting answer; they stay waiting when it fails
        (the error says why), so a later commit can still keep them."""
        if not self._pending:
            return
        conn = self._connection(create=True)
        assert conn is not None
        rows = [(key, value, created) for key, (value, created) in self._pending.items()]
        self._end_reading(conn)
        self._run(conn, "BEGIN IMMEDIATE", ())
        try:
            conn.executemany(_INSERT, rows)
        except sqlite3.Error as exc:
            self._run(conn, "ROLLBACK", ())
            raise self._error(exc) from exc
        self._run(conn, "COMMIT", ())
        self._pending.clear()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(self, key: str) -> tuple[str] | None:
        conn = self._connection(create=False)
        if conn is None:
            return None
        now = time.monotonic()
        if self._reading_since is None or now - self._reading_since >= _FLUSH_AFTER_S:
            self._end_reading(conn)
            self._run(conn, "BEGIN", ())
            self._reading_since = now
        cursor = self._run(conn, "SELECT value FROM responses WHERE key = ?", (key,))
        return cursor.fetchone()

    def _end_reading(self, conn: sqlite3.Connection | None) -> None:
        """End the read transaction the lookups share (see the module's note)."""
        if self._reading_since is not None and conn is not None:
            self._reading_since = None
            if conn.in_transaction:
                self._run(conn, "COMMIT", ())

    def _decode(self, row: tuple[str]) -> Response:
        try:
            stored = json.loads(row[0])
            fields = {name: stored[name] for name in _STORED_FIELDS if name in stored}
            fields["metadata"] = dict(fields.get("metadata") or {})
            return Response(**fields, cached=True)
        except (ValueError, TypeError) as exc:
            raise self._error(exc) from exc

    def _connection(self, create: bool) -> sqlite3.Connection | None:
        """The open connection; None when the file does not exist and ``create`` is off."""
        if self._conn is not None:
            return self._conn
        if not create and not self.path.exists():
            return None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from exc
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL and create the table, retrying while another process does so."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
                conn.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise self._error(exc) from exc
                time.sleep(0.05)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _run(self, conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> LLMOptError:
        if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
            return LLMOptError(
                f"the response cache {self.path} stayed locked for {_BUSY_TIMEOUT_S:.0f} s "
                f"({exc}); another process holds it, or run with --llmopt-no-cache"
            )
        return LLMOptError(
            f"the response cache {self.path} cannot be used ({exc}); delete the file "
            "or run with --llmopt-no-cache"
        )


@dataclass
class _Waiting:
    """The answers written to one cache file in this process and not yet committed."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rows: dict[str, tuple[str, float]] = field(default_factory=dict)
    since: float = 0.0


_WAITING: "weakref.WeakValueDictionary[str, _Waiting]" = weakref.WeakValueDictionary()
_WAITING_LOCK = threading.Lock()


def _waiting_for(path: Path) -> _Waiting:
    key = str(path.absolute())
    with _WAITING_LOCK:
        waiting = _WAITING.get(key)
        if waiting is None:
            waiting = _WAITING[key] = _Waiting()
        return waiting


def _stored(response: Response) -> str:
    return _STORED.encode({name: getattr(response, name) for name in _STORED_FIELDS})


def _commit_left(path: Path, pending: dict[str, tuple[str, float]]) -> None:
    """Commit the answers a cache left waiting (it was dropped, or the process ends)."""
    if not pending:
        return
    try:
        with sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S) as conn:
            conn.executemany(_INSERT, [(key, value, created) for key, (value, created) in pending.items()])
        conn.close()
    except sqlite3.Error:
        pass  # the folder is gone or locked for good: those answers will be asked again
    pending.clear()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text

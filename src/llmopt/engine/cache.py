"""The response cache: provider answers stored in SQLite, shared by parallel workers.

One file, ``<directory>/responses.sqlite3``, in WAL mode so several pytest-xdist
worker processes can read and write it at once; SQLite's own locking (with a
generous busy timeout) does all the coordination. Within a process one connection
is shared by every thread under a lock.

A hit returns the stored response marked ``cached=True`` with the original call's
latency and usage, so reports can tell cached figures apart.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import LLMOptError
from ..provider._base import Request, Response

__all__ = ["ResponseCache", "request_identity", "canonical_json", "CACHE_FILE_NAME"]

CACHE_FILE_NAME = "responses.sqlite3"
_BUSY_TIMEOUT_S = 30.0
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


def canonical_json(data: Mapping[str, Any]) -> str:
    """JSON with sorted keys and no whitespace: equal mappings give equal text."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


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
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def key(self, request_identity: Mapping[str, Any]) -> str:
        """The sha256 of the canonical JSON of a request identity."""
        return hashlib.sha256(canonical_json(request_identity).encode("utf-8")).hexdigest()

    def get(self, key: str) -> Response | None:
        """The stored response for ``key`` (marked cached), or None."""
        with self._lock:
            row = self._fetch(key)
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return self._decode(row)

    def put(self, key: str, response: Response) -> None:
        """Store ``response`` under ``key`` (replacing an older value)."""
        value = json.dumps({name: getattr(response, name) for name in _STORED_FIELDS}, default=dict)
        with self._lock:
            conn = self._connection(create=True)
            assert conn is not None
            self._run(
                conn,
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                (key, value, time.time()),
            )
            self.writes += 1

    def put_many(self, items: "Sequence[tuple[str, Response]]") -> None:
        """Store many responses in one transaction (a batch's answers)."""
        rows = [
            (key, json.dumps({name: getattr(r, name) for name in _STORED_FIELDS}, default=dict), time.time())
            for key, r in items
        ]
        with self._lock:
            conn = self._connection(create=True)
            assert conn is not None
            self._run(conn, "BEGIN IMMEDIATE", ())
            try:
                conn.executemany("INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)", rows)
            except sqlite3.Error as exc:
                self._run(conn, "ROLLBACK", ())
                raise self._error(exc) from exc
            self._run(conn, "COMMIT", ())
            self.writes += len(rows)

    def close(self) -> None:
        """Close the connection (the cache reopens it if used again)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(self, key: str) -> tuple[str] | None:
        conn = self._connection(create=False)
        if conn is None:
            return None
        cursor = self._run(conn, "SELECT value FROM responses WHERE key = ?", (key,))
        return cursor.fetchone()

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


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text

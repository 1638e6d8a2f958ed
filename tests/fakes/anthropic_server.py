"""A loopback stand-in for the Anthropic Messages API, for tests through the real SDK.

``FakeAnthropic`` serves ``POST /v1/messages`` on 127.0.0.1 (a free port) from a
thread. Each request takes the next scripted answer (:class:`Scripted`), else the
``fallback`` answer, else a default message echoing the last user message. Token
counts are exact and predictable: input = words of the system prompt and all
messages, output = words of the answer. The server counts requests and keeps each
request's JSON body and headers.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Mapping

__all__ = ["FakeAnthropic", "Scripted", "unused_port", "count_words"]

HOST = "127.0.0.1"


def unused_port() -> int:
    """A loopback port nothing listens on (for a server that is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def count_words(text: str) -> int:
    """The fake's token count of ``text``."""
    return len(text.split())


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@dataclass(frozen=True)
class Scripted:
    """One scripted answer. ``body=None`` means the default echo message; a callable
    body is called per request with the request's JSON body and lower-cased headers."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"

    @classmethod
    def message(
        cls,
        text: str,
        *,
        input_tokens: int = 10,
        output_tokens: int = 5,
        model: str = "claude-fake",
        stop_reason: str = "end_turn",
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
    ) -> "Scripted":
        usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        if cache_read_input_tokens is not None:
            usage["cache_read_input_tokens"] = cache_read_input_tokens
        if cache_creation_input_tokens is not None:
            usage["cache_creation_input_tokens"] = cache_creation_input_tokens
        content = [{"type": "text", "text": text}] if text else []
        return cls(body=_message(content, model, stop_reason, usage))

    @classmethod
    def error(cls, status: int, kind: str, message: str, headers: Mapping[str, str] | None = None) -> "Scripted":
        return cls(status=status, body=_error_body(kind, message), headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, retry_after: str = "0") -> "Scripted":
        return cls.error(429, "rate_limit_error", "Number of requests has exceeded your rate limit", {"retry-after": retry_after})

    @classmethod
    def overloaded(cls, retry_after_ms: str = "1") -> "Scripted":
        return cls.error(529, "overloaded_error", "Overloaded", {"retry-after-ms": retry_after_ms})

    @classmethod
    def unauthorized(cls, message: str = "invalid x-api-key") -> "Scripted":
        return cls.error(401, "authentication_error", message)

    @classmethod
    def server_error(cls) -> "Scripted":
        return cls.error(500, "api_error", "Internal server error", {"retry-after-ms": "1"})

    @classmethod
    def malformed(cls) -> "Scripted":
        return cls(body='{"id": "msg_broken", "content": [{"type": "te')

    @classmethod
    def slow(cls, seconds: float) -> "Scripted":
        return cls(delay=seconds)

    @classmethod
    def refusal(cls, explanation: str = "The request could enable cyber harm.") -> "Scripted":
        body = _message([], "claude-fake", "refusal", {"input_tokens": 9, "output_tokens": 0})
        body["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": explanation}
        return cls(body=body)


def _message(content: list[dict[str, Any]], model: str, stop_reason: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


class FakeAnthropic:
    """The fake server; use as a context manager. ``base_url`` is its address."""

    def __init__(self, served_model: str | None = None) -> None:
        #: The model name answers report (default: the model asked for).
        self.served_model = served_model
        #: Used when the script is empty (e.g. a 529 that never ends); None: echo.
        self.fallback: Scripted | None = None
        self.script: deque[Scripted] = deque()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server((HOST, 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), name="fake-anthropic", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.bodies)

    @property
    def last_body(self) -> dict[str, Any]:
        return self.bodies[-1]

    @property
    def last_headers(self) -> dict[str, str]:
        return self.headers[-1]

    def push(self, *answers: Scripted) -> None:
        """Queue answers, served in order before the fallback."""
        with self._lock:
            self.script.extend(answers)

    def __enter__(self) -> "FakeAnthropic":
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- called from the handler threads ----------------------------------------------

    def record(self, body: dict[str, Any], headers: dict[str, str]) -> Scripted:
        with self._lock:
            self.bodies.append(body)
            self.headers.append(headers)
            if self.script:
                return self.script.popleft()
            return self.fallback or Scripted()

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def echo(self, body: dict[str, Any]) -> dict[str, Any]:
        """The default answer: the last user message, with word-count usage."""
        messages = body.get("messages") or []
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        answer = _text_of(users[-1].get("content")) if users else ""
        asked = _text_of(body.get("system")) + " " + " ".join(_text_of(m.get("content")) for m in messages)
        usage = {"input_tokens": count_words(asked), "output_tokens": count_words(answer)}
        model = self.served_model or str(body.get("model", "claude-fake"))
        return _message([{"type": "text", "text": answer}], model, "end_turn", usage)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeAnthropic

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (timeouts) is expected: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """No request logging on stderr."""

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.split("?")[0] != "/v1/messages":
            self._send(Scripted.error(404, "not_found_error", f"no route {self.path}"), {})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        answer = fake.record(body, {k.lower(): v for k, v in self.headers.items()})
        if answer.delay:
            fake.wait(answer.delay)
        self._send(answer, body, {k.lower(): v for k, v in self.headers.items()})

    def _send(self, answer: Scripted, request_body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        body = answer.body if answer.body is not None else self.server.fake.echo(request_body)
        if callable(body):
            body = body(request_body, headers or {})
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(answer.status)
        self.send_header("content-type", answer.content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

"""A fake OpenAI server (Chat Completions, Embeddings) on 127.0.0.1, for tests through
the real SDK.

``FakeOpenAI`` is a context manager running a small threaded HTTP server on a free
loopback port. ``POST /v1/chat/completions`` answers from a script (a queue of
``Scripted`` answers, then a sticky one) or, by default, echoes the last user message
with exact token counts: one token per whitespace-separated word of the messages'
contents (prompt) and of the answer (completion). ``FakeOpenAI.answering(fn)`` scripts
replies computed from each request (e.g. a judge's verdict chosen by what it reads).
``FakeOpenAI.choosing(fn)`` picks the whole answer (status, body, headers) per request,
and ``Scripted(cut=True)`` drops the connection halfway through the body it announced
(a streamed answer cut off). ``POST /v1/embeddings`` answers with deterministic vectors (:func:`fake_embedding`:
hashed words, so texts sharing words are similar), as floats or base64 as asked. It
counts every request (retried attempts included) and records the last request's
path, body and headers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

__all__ = ["FakeOpenAI", "Scripted", "count_tokens", "fake_embedding"]

LOOPBACK = "127.0.0.1"
CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
#: Dimensions of the fake's embeddings.
EMBEDDING_DIMENSIONS = 64

#: A body may be computed per request: (fake, JSON body, lower-cased headers) -> body.
BodyFactory = Callable[["FakeOpenAI", Mapping[str, Any], Mapping[str, str]], Any]


def count_tokens(text: str) -> int:
    """The fake's tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def fake_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic unit vector: each lower-cased word adds +-1 at a hashed position."""
    vector = [0.0] * dimensions
    for word in "".join(c if c.isalnum() else " " for c in text.lower()).split():
        digest = hashlib.sha256(word.encode("utf-8")).digest()
        vector[int.from_bytes(digest[:4], "little") % dimensions] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else [1.0] + [0.0] * (dimensions - 1)


@dataclass(frozen=True)
class Scripted:
    """One scripted answer. ``body``: a mapping is sent as JSON, str/bytes as they are,
    a ``BodyFactory`` is called per request; None means the default (echo) answer."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"
    #: Send the headers (with the full content-length) and half the body, then hang up.
    cut: bool = False
    #: Chooses the whole answer per request: (JSON body, lower-cased headers) -> Scripted.
    choose: "Callable[[Mapping[str, Any], Mapping[str, str]], Scripted] | None" = None


class FakeOpenAI:
    """The fake server; use ``with FakeOpenAI() as fake: ... fake.base_url``."""

    def __init__(
        self,
        *,
        served_model: str | None = None,
        system_fingerprint: str | None = "fp_fake_0001",
        cached_tokens: int | None = None,
        delay: float = 0.0,
    ) -> None:
        self.served_model = served_model
        self.system_fingerprint = system_fingerprint
        self.cached_tokens = cached_tokens
        self.delay = delay
        self.requests = 0
        self.embedding_requests = 0
        self.last_path = ""
        self.last_body: dict[str, Any] | None = None
        self.last_headers: dict[str, str] = {}
        self._queue: deque[Scripted] = deque()
        self._sticky: Scripted | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------

    def __enter__(self) -> "FakeOpenAI":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake server is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    # -- scripting --------------------------------------------------------------------

    def script(self, *answers: Scripted) -> None:
        """Answer the next requests with ``answers``, one each, in order."""
        with self._lock:
            self._queue.extend(answers)

    def always(self, answer: Scripted | None) -> None:
        """Answer every request with ``answer`` once the script is used up (None: echo)."""
        with self._lock:
            self._sticky = answer

    @staticmethod
    def unauthorized() -> Scripted:
        """401 whose message quotes the key presented (real servers quote part of it)."""

        def body(fake: FakeOpenAI, request: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
            key = headers.get("authorization", "").removeprefix("Bearer ").strip()
            return _error_body(f"Incorrect API key provided: {key}.", "invalid_request_error", "invalid_api_key")

        return Scripted(401, body)

    @staticmethod
    def rate_limited(retry_after: str = "0") -> Scripted:
        body = _error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
        return Scripted(429, body, headers={"retry-after": retry_after})

    @staticmethod
    def server_error(status: int = 500, retry_after: str | None = None) -> Scripted:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        return Scripted(status, _error_body("The server had an error while processing your request.", "server_error"), headers)

    @staticmethod
    def error(status: int, message: str, kind: str = "invalid_request_error") -> Scripted:
        return Scripted(status, _error_body(message, kind))

    @staticmethod
    def malformed_json() -> Scripted:
        return Scripted(200, b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess')

    @staticmethod
    def slow(seconds: float) -> Scripted:
        """The default answer, after ``seconds`` (for client timeouts)."""
        return Scripted(delay=seconds)

    @staticmethod
    def reply(content: str | None, *, finish_reason: str = "stop", refusal: str | None = None) -> Scripted:
        """A completion with this content, finish reason and refusal (exact tokens)."""

        def body(fake: FakeOpenAI, request: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
            return fake.completion(request, content, finish_reason, refusal)

        return Scripted(body=body)

    @staticmethod
    def answering(reply: Callable[[Mapping[str, Any]], str]) -> Scripted:
        """A completion whose content is ``reply(request body)``: scripted per request,
        whatever order concurrent requests arrive in."""

        def body(fake: FakeOpenAI, request: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
            return fake.completion(request, reply(request))

        return Scripted(body=body)

    @staticmethod
    def choosing(choose: Callable[[Mapping[str, Any], Mapping[str, str]], Scripted]) -> Scripted:
        """An answer chosen per request from its body and headers (status included)."""
        return Scripted(choose=choose)

    @classmethod
    def refusal(cls, text: str = "I'm sorry, I can't help with that.") -> Scripted:
        return cls.reply(None, refusal=text)

    @classmethod
    def content_filter(cls) -> Scripted:
        return cls.reply("", finish_reason="content_filter")

    # -- serving (called from the handler threads) --------------------------------------

    def route(self, method: str, path: str, raw: bytes, headers: Mapping[str, str]) -> tuple[Any, ...] | None:
        """(status, JSON body[, headers]) for a request to another path; None: 404.
        Subclasses serve more endpoints (see ``fakes.finetune_server``)."""
        return None

    def _take(self, body: dict[str, Any] | None, headers: dict[str, str], path: str = CHAT_PATH) -> Scripted:
        with self._lock:
            self.requests += 1
            self.embedding_requests += path == EMBEDDINGS_PATH
            self.last_path, self.last_body, self.last_headers = path, body, headers
            if self._queue:
                return self._queue.popleft()
            return self._sticky or Scripted(delay=self.delay)

    def _payload(
        self, answer: Scripted, request: Mapping[str, Any], headers: Mapping[str, str], path: str = CHAT_PATH
    ) -> bytes:
        body = answer.body(self, request, headers) if callable(answer.body) else answer.body
        if body is None and path == EMBEDDINGS_PATH:
            body = self.embeddings(request)
        elif body is None:
            body = self.completion(request, _last_user_text(request))
        if isinstance(body, (bytes, str)):
            return body if isinstance(body, bytes) else body.encode("utf-8")
        return json.dumps(body).encode("utf-8")

    def completion(
        self, request: Mapping[str, Any], content: str | None, finish_reason: str = "stop", refusal: str | None = None
    ) -> dict[str, Any]:
        """A chat completion for ``request`` with exact token counts."""
        prompt = sum(count_tokens(str(m.get("content") or "")) for m in request.get("messages") or [])
        completion = count_tokens(content or refusal or "")
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        message = {"role": "assistant", "content": content, "refusal": refusal}
        return {
            "id": f"chatcmpl-fake-{self.requests}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": self.served_model or request.get("model"),
            "system_fingerprint": self.system_fingerprint,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage,
        }


    def embeddings(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """An embeddings response for ``request`` (floats, or base64 little-endian float32)."""
        texts = request.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        as_base64 = request.get("encoding_format") == "base64"
        data = []
        for position, text in enumerate(texts):
            vector = fake_embedding(str(text), int(request.get("dimensions") or EMBEDDING_DIMENSIONS))
            encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": position, "embedding": encoded})
        tokens = sum(count_tokens(str(text)) for text in texts)
        return {
            "object": "list",
            "data": data,
            "model": self.served_model or request.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI

    def server_bind(self) -> None:
        host = self.server_address[0]
        if host != LOOPBACK:
            raise ValueError(f"the fake OpenAI server binds only {LOOPBACK}, not {host!r}")
        super().server_bind()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients that time out and hang up are part of the tests."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        path = self.path.split("?")[0].rstrip("/")
        if path not in (CHAT_PATH, EMBEDDINGS_PATH):
            self._other("POST", raw)
            return
        request = _json_or_none(raw)
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake = self.server.fake
        answer = fake._take(request, headers, path)
        if answer.choose is not None:
            answer = answer.choose(request or {}, headers)
        if answer.delay and fake._stopping.wait(answer.delay):
            return
        payload = fake._payload(answer, request or {}, headers, path)
        self._send(answer.status, payload, {"content-type": answer.content_type, **answer.headers}, cut=answer.cut)

    def do_GET(self) -> None:  # noqa: N802
        self._other("GET", b"")

    def _other(self, method: str, raw: bytes) -> None:
        """A path other than chat completions and embeddings: the fake's ``route`` answers, else 404."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        routed = self.server.fake.route(method, self.path, raw, headers)
        if routed is None:
            message = "Only POST /v1/chat/completions" if method == "GET" else f"Unknown path {self.path}"
            self._send(404, json.dumps(_error_body(message, "invalid_request_error")).encode(), {})
            return
        status, body, *extra = routed
        self._send(status, json.dumps(body).encode("utf-8"), extra[0] if extra else {})

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str], *, cut: bool = False) -> None:
        try:
            self.send_response(status)
            for name, value in {"content-type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2] if cut else payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if cut:
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""


def _error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _json_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        found = json.loads(raw or b"null")
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _last_user_text(request: Mapping[str, Any]) -> str:
    users = [m for m in request.get("messages") or [] if m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


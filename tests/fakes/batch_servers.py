"""Loopback fakes of the two batch APIs, speaking their real wire formats, for tests
through the official SDKs.

``FakeOpenAIBatch``: ``POST /v1/files`` (multipart upload, purpose ``batch``),
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/files/{id}/content`` (the
output and error files), and the synchronous ``POST /v1/chat/completions``.
``FakeAnthropicBatch``: ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}``,
``GET /v1/messages/batches/{id}/results`` (JSONL), and the synchronous ``POST /v1/messages``.

Both answer every request with the last user message (one token per word), exactly as
their synchronous endpoint does, so a batch run and a synchronous run can be compared.
A batch ends ``delay`` seconds after it was created. ``outcome(custom_id, body)`` picks
a request's fate: None (answered), ``("error", status, message)``, or ``"expired"``
(the batch then ends ``expired``, like a 24-hour window running out). Every request
sent (by custom id, batch or synchronous) is counted, so a test can prove none was
sent twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

__all__ = ["FakeAnthropicBatch", "FakeOpenAIBatch"]

HOST = "127.0.0.1"
Outcome = Callable[[str, Mapping[str, Any]], Any]


def _words(text: str) -> int:
    return len(text.split())


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def _last_user(body: Mapping[str, Any]) -> str:
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


def body_key(body: Mapping[str, Any]) -> str:
    """What identifies a request body (the same for its batch and synchronous form)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class _Batch:
    id: str
    requests: list[tuple[str, dict[str, Any]]]
    created: float
    delay: float
    input_file_id: str = ""
    failed_message: str | None = None
    polls: int = 0
    files: dict[str, bytes] = field(default_factory=dict)

    def ended(self) -> bool:
        return time.monotonic() >= self.created + self.delay

    def done(self) -> int:
        if self.delay <= 0 or self.ended():
            return len(self.requests)
        return int(len(self.requests) * (time.monotonic() - self.created) / self.delay)


class _Fake:
    """What both fakes share: the server thread, counting, outcomes."""

    prefix = "fake"

    def __init__(
        self, delay: float = 0.0, outcome: Outcome | None = None, answer: Callable[[Mapping[str, Any]], str] | None = None
    ) -> None:
        self.delay = delay
        self.outcome: Outcome = outcome or (lambda custom_id, body: None)
        #: The answer's text for a request body (default: its last user message).
        self.answer = answer or _last_user
        self.batches: dict[str, _Batch] = {}
        #: Every request received, by body key (batch entries and synchronous calls).
        self.sent: Counter[str] = Counter()
        self.sync_requests = 0
        self.batch_requests = 0
        self.polls = 0
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer((HOST, 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self) -> "_Fake":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def twice(self) -> int:
        """Requests received more than once."""
        return sum(1 for n in self.sent.values() if n > 1)

    def new_batch(self, requests: list[tuple[str, dict[str, Any]]]) -> _Batch:
        with self.lock:
            batch = _Batch(f"{self.prefix}_{len(self.batches) + 1:04d}", requests, time.monotonic(), self.delay)
            self.batches[batch.id] = batch
            self.batch_requests += len(requests)
            self.sent.update(body_key(body) for _, body in requests)
        return batch

    def sync(self, body: Mapping[str, Any]) -> None:
        with self.lock:
            self.sync_requests += 1
            self.sent[body_key(body)] += 1

    def stats(self) -> dict[str, int]:
        """What was received (for a benchmark running the fake in its own process)."""
        with self.lock:
            return {"batches": len(self.batches), "batch_requests": self.batch_requests,
                    "sync_requests": self.sync_requests, "polls": self.polls,
                    "twice": sum(1 for n in self.sent.values() if n > 1)}

    def route(self, method: str, path: str, raw: bytes, headers: Mapping[str, str]) -> tuple[int, Any, str]:
        raise NotImplementedError


class FakeOpenAIBatch(_Fake):
    """OpenAI's Files + Batch API, and Chat Completions."""

    prefix = "batch_fake"

    def __init__(self, delay: float = 0.0, outcome: Outcome | None = None, fail_batch: str | None = None, **kw: Any) -> None:
        super().__init__(delay, outcome, **kw)
        self.files: dict[str, bytes] = {}
        #: A message: every batch fails validation with it.
        self.fail_batch = fail_batch

    @property
    def base_url(self) -> str:
        return super().base_url + "/v1"

    def route(self, method: str, path: str, raw: bytes, headers: Mapping[str, str]) -> tuple[int, Any, str]:
        if method == "POST" and path == "/v1/chat/completions":
            body = json.loads(raw)
            self.sync(body)
            return 200, completion(body, self.answer(body)), "application/json"
        if method == "POST" and path == "/v1/files":
            return 200, self._upload(raw, headers.get("content-type", "")), "application/json"
        if method == "POST" and path == "/v1/batches":
            return 200, self._create(json.loads(raw)), "application/json"
        if method == "GET" and path == "/v1/_stats":
            return 200, self.stats(), "application/json"
        found = re.fullmatch(r"/v1/batches/([\w-]+)", path)
        if method == "GET" and found:
            with self.lock:
                self.polls += 1
            return 200, self._batch_json(self.batches[found.group(1)]), "application/json"
        found = re.fullmatch(r"/v1/files/([\w-]+)/content", path)
        if method == "GET" and found:
            return 200, self.files[found.group(1)], "application/octet-stream"
        return 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}}, "application/json"

    def _upload(self, raw: bytes, content_type: str) -> dict[str, Any]:
        boundary = content_type.split("boundary=")[1].strip('"').encode()
        data = b""
        for part in raw.split(b"--" + boundary):
            head, _, rest = part.partition(b"\r\n\r\n")
            if b'name="file"' in head:
                data = rest[:-2] if rest.endswith(b"\r\n") else rest
        with self.lock:
            file_id = f"file-fake{len(self.files) + 1:04d}"
            self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 1_700_000_000,
                "filename": "input.jsonl", "purpose": "batch", "status": "processed"}

    def _create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        lines = [json.loads(line) for line in self.files[body["input_file_id"]].splitlines() if line.strip()]
        batch = self.new_batch([(line["custom_id"], line["body"]) for line in lines])
        batch.input_file_id = body["input_file_id"]
        batch.failed_message = self.fail_batch
        return self._batch_json(batch)

    def _batch_json(self, batch: _Batch) -> dict[str, Any]:
        fates = [(cid, body, self.outcome(cid, body)) for cid, body in batch.requests]
        expired = any(fate == "expired" for _, _, fate in fates)
        status = "in_progress"
        out: dict[str, Any] = {"id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions",
                               "completion_window": "24h", "created_at": 1_700_000_000,
                               "input_file_id": batch.input_file_id}
        total = len(batch.requests)
        done = batch.done()
        if batch.failed_message:
            status = "failed" if batch.ended() else "validating"
            out["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": batch.failed_message, "line": 1}]}
            counts = {"total": 0, "completed": 0, "failed": 0}
        elif batch.ended():
            status = "expired" if expired else "completed"
            self._write_files(batch, fates)
            out["output_file_id"] = batch.files.get("output")
            out["error_file_id"] = batch.files.get("error")
            failed = sum(1 for _, _, fate in fates if fate is not None)
            counts = {"total": total, "completed": total - failed, "failed": failed}
        else:
            counts = {"total": total, "completed": done, "failed": 0}
        out["status"] = status
        out["request_counts"] = counts
        return out

    def _write_files(self, batch: _Batch, fates: list[tuple[str, dict[str, Any], Any]]) -> None:
        if batch.files:
            return
        output, errors = [], []
        for n, (cid, body, fate) in enumerate(fates):
            line: dict[str, Any] = {"id": f"batch_req_{n}", "custom_id": cid}
            if fate is None:
                line |= {"response": {"status_code": 200, "request_id": f"req_{n}", "body": completion(body, self.answer(body))},
                         "error": None}
                output.append(line)
            elif fate == "expired":
                errors.append(line | {"response": None, "error": {"code": "batch_expired",
                              "message": "This request could not be executed before the completion window expired."}})
            else:
                _, status, message = fate
                errors.append(line | {"response": {"status_code": status, "request_id": f"req_{n}", "body": {
                    "error": {"message": message, "type": "invalid_request_error", "code": None}}}, "error": None})
        for name, lines in (("output", output), ("error", errors)):
            if lines:
                file_id = f"file-{batch.id}-{name}"
                self.files[file_id] = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
                batch.files[name] = file_id  # type: ignore[assignment]


def completion(body: Mapping[str, Any], content: str) -> dict[str, Any]:
    prompt = sum(_words(_text(m.get("content"))) for m in body.get("messages") or [])
    answer = _words(content)
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer},
    }


class FakeAnthropicBatch(_Fake):
    """Anthropic's Message Batches, and the Messages API."""

    prefix = "msgbatch_fake"

    def route(self, method: str, path: str, raw: bytes, headers: Mapping[str, str]) -> tuple[int, Any, str]:
        if method == "POST" and path == "/v1/messages":
            body = json.loads(raw)
            self.sync(body)
            return 200, message(body, self.answer(body)), "application/json"
        if method == "POST" and path == "/v1/messages/batches":
            requests = [(r["custom_id"], r["params"]) for r in json.loads(raw)["requests"]]
            return 200, self._batch_json(self.new_batch(requests)), "application/json"
        found = re.fullmatch(r"/v1/messages/batches/(\w+)", path)
        if method == "GET" and found:
            with self.lock:
                self.polls += 1
            return 200, self._batch_json(self.batches[found.group(1)]), "application/json"
        found = re.fullmatch(r"/v1/messages/batches/(\w+)/results", path)
        if method == "GET" and found:
            return 200, self._results(self.batches[found.group(1)]), "application/binary"
        return 404, {"type": "error", "error": {"type": "not_found_error", "message": f"no route {path}"}}, "application/json"

    def _batch_json(self, batch: _Batch) -> dict[str, Any]:
        created = datetime(2026, 1, 1, tzinfo=timezone.utc)
        ended = batch.ended()
        counts = {"processing": 0 if ended else len(batch.requests) - batch.done(),
                  "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            for cid, body in batch.requests:
                fate = self.outcome(cid, body)
                kind = "succeeded" if fate is None else "expired" if fate == "expired" else "errored"
                counts[kind] += 1
        return {
            "id": batch.id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts, "created_at": created.isoformat(),
            "expires_at": (created + timedelta(days=1)).isoformat(), "ended_at": created.isoformat() if ended else None,
            "archived_at": None, "cancel_initiated_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def _results(self, batch: _Batch) -> bytes:
        lines = []
        for cid, body in batch.requests:
            fate = self.outcome(cid, body)
            if fate is None:
                result: dict[str, Any] = {"type": "succeeded", "message": message(body, self.answer(body))}
            elif fate == "expired":
                result = {"type": "expired"}
            else:
                result = {"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error",
                                                                                  "message": fate[2]}}}
            lines.append(json.dumps({"custom_id": cid, "result": result}).encode() + b"\n")
        return b"".join(lines)


def message(body: Mapping[str, Any], answer: str) -> dict[str, Any]:
    asked = _text(body.get("system")) + " " + " ".join(_text(m.get("content")) for m in body.get("messages") or [])
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model"),
        "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": _words(asked), "output_tokens": _words(answer)},
    }


class _Handler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._answer("GET")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, kind = self.server.fake.route(method, self.path.split("?")[0], raw, headers)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

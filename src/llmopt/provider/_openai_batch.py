"""OpenAI's Batch API through the official SDK: upload a JSONL input file
(``files.create(purpose="batch")``), create the batch (``batches.create``), poll it
(``batches.retrieve``) and read its output and error files (``files.content``).

Each line of the input file carries the same Chat Completions body a synchronous call
sends (``openai.chat_request``), so an answer is filed under the same cache key.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import ProviderError
from ._base import Request
from ._batch import BatchEntry, BatchLimits, BatchOutcome, BatchStatus
from ._hosted_batch import BATCH_REQUEST_TIMEOUT_S, HostedBatcher

if TYPE_CHECKING:
    from ._hosted import HostedProvider

__all__ = ["OpenAIBatcher", "OPENAI_LIMITS"]

#: One input file holds at most 50,000 requests and 200 MB.
OPENAI_LIMITS = BatchLimits(requests=50_000, bytes=200 * 1024 * 1024)
CHAT_URL = "/v1/chat/completions"
#: Statuses after which no request of the batch changes any more.
_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


class OpenAIBatcher(HostedBatcher):
    """The Batch API of one OpenAI model (or a compatible server that has it)."""

    def __init__(self, provider: "HostedProvider") -> None:
        super().__init__(provider, OPENAI_LIMITS)

    def entry(self, custom_id: str, request: Request) -> BatchEntry:
        body, _options = self.provider.request_body(request)
        line = {"custom_id": custom_id, "method": "POST", "url": CHAT_URL, "body": body}
        data = _jsonl(line)
        return BatchEntry(custom_id, line, len(data), data)

    async def submit(self, entries: Sequence[BatchEntry]) -> str:
        client = self.client()
        data = b"".join(e.data or _jsonl(e.entry) for e in entries)
        upload = await self.guarded(
            "uploading the batch input file",
            lambda: client.files.create(
                file=("llmopt-batch.jsonl", data, "application/jsonl"), purpose="batch", timeout=BATCH_REQUEST_TIMEOUT_S
            ),
        )
        batch = await self.guarded(
            "creating the batch",
            lambda: client.batches.create(
                input_file_id=upload.id, endpoint=CHAT_URL, completion_window="24h", metadata={"created_by": "llmopt"}
            ),
        )
        return str(batch.id)

    async def status(self, batch_id: str) -> BatchStatus:
        batch = await self.guarded(f"batch {batch_id}", lambda: self.client().batches.retrieve(batch_id))
        counts = batch.request_counts
        done = (counts.completed + counts.failed) if counts is not None else 0
        total = counts.total if counts is not None else 0
        return BatchStatus(batch_id, batch.status, batch.status in _ENDED, done, total, _batch_errors(batch))

    async def results(self, batch_id: str) -> Sequence[BatchOutcome]:
        client = self.client()
        batch = await self.guarded(f"batch {batch_id}", lambda: client.batches.retrieve(batch_id))
        outcomes: list[BatchOutcome] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                outcomes += [self._outcome(line, batch_id) for line in await self._lines(client, batch_id, file_id)]
        return outcomes

    async def _lines(self, client: Any, batch_id: str, file_id: str) -> list[bytes]:
        content = await self.guarded(f"batch {batch_id} file {file_id}", lambda: client.files.content(file_id))
        return [line for line in content.content.splitlines() if line.strip()]

    def _outcome(self, raw_line: bytes, batch_id: str) -> BatchOutcome:
        line = json.loads(raw_line)
        custom_id = str(line.get("custom_id"))
        response = line.get("response") if isinstance(line.get("response"), Mapping) else None
        error = line.get("error")
        if response is not None and response.get("status_code") == 200:
            try:
                return BatchOutcome(custom_id, response=self.answer(response.get("body"), batch_id))
            except ProviderError as exc:
                return BatchOutcome(custom_id, error=str(exc))
        return BatchOutcome(custom_id, error=f"openai: {_request_error(response, error)}")


def _jsonl(line: Mapping[str, Any]) -> bytes:
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _request_error(response: Mapping[str, Any] | None, error: Any) -> str:
    """The message of one failed request: the server's HTTP error, or the batch's
    (``batch_expired``, ``batch_cancelled``)."""
    if isinstance(error, Mapping):
        return f"batch request {error.get('code') or 'failed'}: {error.get('message') or 'no message'}"
    body = response.get("body") if response is not None else None
    inner = body.get("error") if isinstance(body, Mapping) else None
    message = inner.get("message") if isinstance(inner, Mapping) else None
    status = response.get("status_code") if response is not None else None
    return f"batch request failed (HTTP {status}): {message or 'no message'}"


def _batch_errors(batch: Any) -> str | None:
    """Why a whole batch failed (its validation errors), when it did."""
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    shown = [f"{e.code}: {e.message}" + (f" (line {e.line})" if e.line else "") for e in errors[:3]]
    return "; ".join(shown) or None

"""Anthropic's Message Batches through the official SDK: create a batch of requests
(``messages.batches.create``), poll it (``retrieve``) and stream its results JSONL
(``results``).

Each request's ``params`` are the same Messages API body a synchronous call sends
(``AnthropicProvider.request_body``), so an answer is filed under the same cache key.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ProviderError
from ._base import Request
from ._batch import BatchEntry, BatchLimits, BatchOutcome, BatchStatus
from ._hosted_batch import BATCH_REQUEST_TIMEOUT_S, HostedBatcher

if TYPE_CHECKING:
    from ._hosted import HostedProvider

__all__ = ["AnthropicBatcher", "ANTHROPIC_LIMITS"]

#: One Message Batch holds at most 100,000 requests and 256 MB.
ANTHROPIC_LIMITS = BatchLimits(requests=100_000, bytes=256 * 1024 * 1024)
_WHY = {
    "canceled": "the request was cancelled before it was processed",
    "expired": "the request expired before the batch could process it (24 hours)",
}


class AnthropicBatcher(HostedBatcher):
    """The Message Batches API of one Claude model."""

    def __init__(self, provider: "HostedProvider") -> None:
        super().__init__(provider, ANTHROPIC_LIMITS)

    def entry(self, custom_id: str, request: Request) -> BatchEntry:
        body, _options = self.provider.request_body(request)
        item = {"custom_id": custom_id, "params": body}
        return BatchEntry(custom_id, item, len(json.dumps(item, ensure_ascii=False).encode("utf-8")) + 2)

    async def submit(self, entries: Sequence[BatchEntry]) -> str:
        client = self.client()
        requests: list[Any] = [dict(e.entry) for e in entries]
        batch = await self.guarded(
            "creating the message batch",
            lambda: client.messages.batches.create(requests=requests, timeout=BATCH_REQUEST_TIMEOUT_S),
        )
        return str(batch.id)

    async def status(self, batch_id: str) -> BatchStatus:
        batch = await self.guarded(f"message batch {batch_id}", lambda: self.client().messages.batches.retrieve(batch_id))
        c = batch.request_counts
        total = c.processing + c.succeeded + c.errored + c.canceled + c.expired
        ended = batch.processing_status == "ended"
        return BatchStatus(batch_id, batch.processing_status, ended, total - c.processing, total)

    async def results(self, batch_id: str) -> Sequence[BatchOutcome]:
        client = self.client()
        stream = await self.guarded(f"message batch {batch_id} results", lambda: client.messages.batches.results(batch_id))
        outcomes: list[BatchOutcome] = []
        async for entry in stream:
            outcomes.append(self._outcome(entry, batch_id))
        return outcomes

    def _outcome(self, entry: Any, batch_id: str) -> BatchOutcome:
        result = entry.result
        if result.type == "succeeded":
            try:
                return BatchOutcome(entry.custom_id, response=self.answer(result.message.model_dump(mode="json"), batch_id))
            except ProviderError as exc:
                return BatchOutcome(entry.custom_id, error=str(exc))
        if result.type == "errored":
            error = getattr(result.error, "error", None)
            kind, message = getattr(error, "type", "error"), getattr(error, "message", "")
            return BatchOutcome(entry.custom_id, error=f"anthropic: batch request errored ({kind}): {message}")
        return BatchOutcome(entry.custom_id, error=f"anthropic: {_WHY.get(result.type, result.type)}")

"""What a provider's batch API offers the engine (OpenAI's Batch API, Anthropic's
Message Batches): a leaf module, so providers never import the engine.

A provider that can carry requests in batches returns a :class:`Batcher` from its
``batcher()`` member (the default, on :class:`ProviderBase`, is None). The engine's
batch phase (``llmopt.engine.batch``) groups requests by ``Batcher.group``, splits them
at ``max_requests`` / ``max_bytes``, submits, polls and reads the results; every answer
then reaches the response cache through the call gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from ._base import Request, Response

__all__ = ["BatchEntry", "BatchOutcome", "BatchStatus", "Batcher"]


@dataclass(frozen=True)
class BatchEntry:
    """One request as the batch API takes it: its ``custom_id`` and the JSON entry
    (a JSONL line of OpenAI's input file, an item of Anthropic's ``requests``)."""

    custom_id: str
    entry: Mapping[str, Any]
    #: The size of the entry's JSON in bytes (counted against the provider's limit).
    size: int
    #: The entry as it is sent, when the batcher encodes it once (a JSONL line).
    data: bytes = b""


@dataclass(frozen=True)
class BatchStatus:
    """Where a submitted batch stands."""

    id: str
    #: The provider's own word (``in_progress``, ``completed``, ``ended``, ``expired``...).
    state: str
    #: True once no request of the batch will change any more (results can be read).
    ended: bool
    done: int = 0
    total: int = 0
    #: Why the whole batch failed (a validation error), when it did.
    message: str | None = None


@dataclass(frozen=True)
class BatchOutcome:
    """One request's result: its response, or the provider's message of why it failed
    (errored, expired, cancelled)."""

    custom_id: str
    response: Response | None = None
    error: str | None = None


@dataclass(frozen=True)
class BatchLimits:
    """The most requests and bytes one batch may hold."""

    requests: int
    bytes: int
    extra: Mapping[str, Any] = field(default_factory=dict)


class Batcher(Protocol):
    """A provider's batch API for one model."""

    #: Requests with the same group go into one batch (provider, base URL, model).
    group: str
    limits: BatchLimits
    #: ``model.batch``: True or False as the spec says, None when it says nothing.
    wanted: bool | None

    def entry(self, custom_id: str, request: Request) -> BatchEntry:
        """The batch entry of ``request``, byte for byte the body a synchronous call sends."""

    def estimate_cost(self, request: Request) -> float:
        """An upper estimate of the request's cost at the batch rates (USD)."""

    async def submit(self, entries: Sequence[BatchEntry]) -> str:
        """Submit one batch; its id."""

    async def status(self, batch_id: str) -> BatchStatus:
        """Where the batch stands now."""

    async def results(self, batch_id: str) -> Sequence[BatchOutcome]:
        """Every request's outcome of an ended batch."""

    async def aclose(self) -> None:
        """Close the client of the current event loop."""

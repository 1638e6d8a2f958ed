"""What the OpenAI and Anthropic batchers share: grouping, the batch price, the SDK
client of the provider (one per event loop), answers read as the synchronous call
reads them, and SDK errors mapped at the boundary."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

from ..errors import LLMOptError
from ._base import Request, Response
from ._batch import BatchLimits
from ._pricing import cost_usd

if TYPE_CHECKING:
    from ._hosted import HostedProvider

__all__ = ["HostedBatcher"]

T = TypeVar("T")
#: Seconds for one batch API request (an upload of up to 200 MB included).
BATCH_REQUEST_TIMEOUT_S = 600.0


class HostedBatcher:
    """The batch API of one hosted model; subclasses speak the provider's wire format."""

    def __init__(self, provider: "HostedProvider", limits: BatchLimits) -> None:
        self.provider = provider
        self.limits = limits
        self.wanted = provider.spec.batch
        self.price = provider.price.batched() if provider.price is not None else None
        base_url = getattr(provider, "base_url", provider.spec.base_url)
        self.group = json.dumps([provider.ptype.name, base_url, provider.spec.id, provider.env_var])

    def estimate_cost(self, request: Request) -> float:
        return self.provider.estimate_at(self.price, request)

    def client(self) -> Any:
        """The provider's SDK client for the running event loop (a missing key fails closed)."""
        return self.provider._client_for_loop()

    def answer(self, raw: Any, batch_id: str) -> Response:
        """A batch result's body read as the synchronous answer is (ProviderError for a
        refusal or an empty answer), priced at the batch rates."""
        reply = self.provider.read(raw)
        return Response(
            text=reply.text,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cached_input_tokens=reply.cached_input_tokens,
            model=reply.model,
            cost_usd=cost_usd(self.price, reply.input_tokens, reply.output_tokens, reply.cached_input_tokens),
            metadata={**reply.metadata, "batch_id": batch_id},
        )

    async def guarded(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        """``await make()``; an SDK exception becomes llmopt's error, naming ``what``."""
        try:
            return await make()
        except LLMOptError:
            raise
        except Exception as exc:  # mapped at the boundary
            mapped = self.provider._mapped(exc)
            raise type(mapped)(f"{what}: {mapped}") from None

    async def aclose(self) -> None:
        await self.provider.aclose()

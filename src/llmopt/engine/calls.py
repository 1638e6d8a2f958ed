"""The one gateway of model calls: cache, replay, budget, bounds, redaction, usage.

Every call to a model goes through :class:`ModelCalls`: the runner's generations, the
judges' verdicts and the embeddings of retrieval (later: batch submissions and
proposer models). Nothing else reads or writes the response cache or the budget.

One call, in order:

0. a prompt that is not valid Unicode text (a lone surrogate from a ``\\ud800`` escape
   in a dataset row) is refused: no server can be sent it;
1. its cache key (when the provider is cacheable): a hit is returned, marked cached;
2. ``replay`` mode: a miss (or an uncacheable, non-free provider) is a CacheMiss;
3. the budget holds the call's estimated cost, waiting while the calls in flight hold
   what it needs (not for ``free`` providers);
4. the call is made inside its bound (the caller's semaphore, if any);
5. every string that leaves the provider (the answer, an error) is redacted of the
   provider's secrets and of anything shaped like an API key;
6. the budget records the real cost, the cache stores the answer, and the usage of
   its kind (``generation``, ``judge``, ``embedding``) is added up.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from ..errors import CacheMiss, LLMOptError, ProviderError
from ..provider._hosted import redact
from ..provider._usage import Usage

if TYPE_CHECKING:
    from ..provider import Provider, Request, Response
    from ..provider.embedding import Embedded, Embedder
    from .budget import Budget
    from .cache import ResponseCache

__all__ = ["CACHE_MODES", "Call", "ModelCalls", "response_usage"]

#: How the response cache is used: read and write ("on"), answers only from the cache
#: with a miss as an error ("replay"), or call again and overwrite ("refresh").
CACHE_MODES = ("on", "replay", "refresh")


@dataclass(frozen=True)
class Call:
    """One model call: which provider (and its spec name), the request, where it comes
    from (for messages) and what kind of call it is (for usage)."""

    provider: "Provider"
    provider_name: str
    request: "Request"
    what: str
    kind: str = "generation"
    #: Bounds the call in flight (a judging model's own concurrency), when given.
    gate: asyncio.Semaphore | None = None


class ModelCalls:
    """The gateway. Thread-safe; one per run (or per evaluation outside pytest)."""

    def __init__(
        self, cache: "ResponseCache | None" = None, mode: str = "on", budget: "Budget | None" = None
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode must be one of {CACHE_MODES}, got {mode!r}")
        self.cache = cache
        self.mode = mode
        self.budget = budget
        self._usage: dict[str, Usage] = {}
        self._lock = threading.Lock()

    # -- chat calls -----------------------------------------------------------------

    async def call(self, call: Call) -> "Response":
        """The provider's answer to the request (cached, replayed, budgeted, bounded)."""
        _refuse_surrogates(call)
        key = self._key(call)
        hit = self._lookup(key)
        if hit is not None:
            self._count(call.kind, response_usage(hit))
            return hit
        self._refuse_in_replay(call, key)
        held = await self._hold(call)
        try:
            response = await self._generate(call)
        except BaseException:
            self._settle(held, 0.0)
            raise
        self._settle(held, response.cost_usd)
        if key is not None and self.cache is not None:
            self.cache.put(key, response)
        self._count(call.kind, response_usage(response))
        return response

    def usage(self, kind: str) -> Usage:
        """What the calls of ``kind`` used so far (cache hits included)."""
        with self._lock:
            return self._usage.get(kind, Usage())

    def _key(self, call: Call) -> str | None:
        if self.cache is None or not call.provider.cacheable:
            return None
        from .cache import request_identity

        identity = request_identity(
            call.provider_name, call.provider.identity(), call.request, include_case=call.provider.cache_includes_case
        )
        return self.cache.key(identity)

    def _lookup(self, key: str | None) -> "Response | None":
        if key is None or self.cache is None or self.mode == "refresh":
            return None
        return self.cache.get(key)

    def _refuse_in_replay(self, call: Call, key: str | None) -> None:
        if self.mode != "replay" or (key is None and call.provider.free):
            return
        repeat = f" (repeat {call.request.repeat})"
        if key is None:
            raise CacheMiss(
                f"{call.what}: --llmopt-cache=replay makes no calls, and {call.provider_name!r} answers are not "
                "cached (give the model options: {cache: true} to record them)"
            )
        raise CacheMiss(
            f"{call.what}: no cached answer{repeat} and --llmopt-cache=replay makes no calls: "
            "record it with a run in the default mode"
        )

    async def _hold(self, call: Call) -> float | None:
        if self.budget is None or call.provider.free:
            return None
        return await self.budget.hold(call.what, call.provider.estimate_cost(call.request))

    def _settle(self, held: float | None, cost_usd: float) -> None:
        if self.budget is not None and (held is not None or cost_usd):
            self.budget.release(held or 0.0, cost_usd)

    async def _generate(self, call: Call) -> "Response":
        async with AsyncExitStack() as stack:
            if call.gate is not None:
                await stack.enter_async_context(call.gate)
            response = await self._guarded(call.provider, call.provider_name, lambda: call.provider.generate(call.request))
        return _redacted_response(response, call.provider.secrets())

    async def _guarded(self, provider: Any, name: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """``await make()`` with every error redacted; an exception that is not
        llmopt's own becomes a ProviderError naming the provider."""
        try:
            return await make()
        except LLMOptError as exc:
            raise _redacted_error(exc, provider.secrets()) from None
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a plugin provider's own failure: that case's error
            message = redact(f"provider {name!r} raised {type(exc).__name__}: {exc}", *provider.secrets())
            raise ProviderError(message) from None

    # -- embeddings -----------------------------------------------------------------

    async def embed(self, embedder: "Embedder", texts: Sequence[str], what: str, *, cached: bool = False) -> "Embedded":
        """Vectors of ``texts``, in batches of the embedder's size, each budgeted and
        counted as an ``embedding`` call. With ``cached`` (query vectors), each text's
        vector is kept in the response cache under the model's identity and the text."""
        if cached and len(texts) == 1:
            return await self._cached_vector(embedder, texts[0], what)
        size = max(1, embedder.batch_size)
        batches = [list(texts[n : n + size]) for n in range(0, len(texts), size)]
        done = await asyncio.gather(*(self._embed_batch(embedder, batch, what) for batch in batches))
        from ..provider.embedding import Embedded

        return Embedded([v for part in done for v in part.vectors], sum(part.input_tokens for part in done))

    async def _cached_vector(self, embedder: "Embedder", text: str, what: str) -> "Embedded":
        from ..provider import Response
        from ..provider.embedding import Embedded, plain_identity

        key = self.cache.key({"embedding": plain_identity(embedder.identity()), "input": text}) if self.cache else None
        stored = self._lookup(key)
        if stored is not None:
            self._count("embedding", Usage(cache_hits=1))
            return Embedded([list(json.loads(stored.text))], stored.input_tokens)
        if self.mode == "replay" and not embedder.free:
            raise CacheMiss(f"{what}: no cached query vector and --llmopt-cache=replay makes no calls")
        embedded = await self._embed_batch(embedder, [text], what)
        if key is not None and self.cache is not None:
            self.cache.put(key, Response(text=json.dumps(embedded.vectors[0]), input_tokens=embedded.input_tokens))
        return embedded

    async def _embed_batch(self, embedder: "Embedder", texts: list[str], what: str) -> "Embedded":
        if self.mode == "replay" and not embedder.free:
            raise CacheMiss(f"{what}: --llmopt-cache=replay makes no calls, and this index is not in the index cache")
        held = None if self.budget is None or embedder.free else await self.budget.hold(what, 0.0)
        try:
            embedded = await self._guarded(embedder, "embedding", lambda: embedder.embed(texts))
        except BaseException:
            self._settle(held, 0.0)
            raise
        self._settle(held, embedded.cost_usd)
        self._count("embedding", Usage(input_tokens=embedded.input_tokens, cost_usd=embedded.cost_usd, calls=1))
        return embedded

    def _count(self, kind: str, usage: Usage) -> None:
        with self._lock:
            self._usage[kind] = self._usage.get(kind, Usage()) + usage


def response_usage(r: "Response") -> Usage:
    """What one response used: a cache hit spent nothing (its original cost is kept
    apart, as ``cached_cost_usd``)."""
    spent, saved = (0.0, r.cost_usd) if r.cached else (r.cost_usd, 0.0)
    return Usage(r.input_tokens, r.output_tokens, spent, int(r.cached), int(not r.cached), saved)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_surrogates(call: Call) -> None:
    """ProviderError when a message holds a lone surrogate (not valid Unicode text)."""
    for number, message in enumerate(call.request.messages, 1):
        found = _SURROGATE.search(str(message.get("content", "")))
        if found is not None:
            escape = found.group(0).encode("utf-8", "backslashreplace").decode("ascii")
            raise ProviderError(
                f"{call.what}: message {number} of the prompt holds a lone surrogate ({escape} at character "
                f"{found.start() + 1}), which is not valid Unicode text and cannot be sent: fix the escape in the case's data"
            )


def _redacted_error(exc: LLMOptError, secrets: Sequence[str]) -> LLMOptError:
    message = str(exc)
    cleaned = redact(message, *secrets)
    if cleaned == message:
        return exc
    try:
        return type(exc)(cleaned)
    except TypeError:  # an error class with another signature: keep the class's family
        return ProviderError(cleaned)


def _redacted_response(response: "Response", secrets: Sequence[str]) -> "Response":
    text = redact(response.text, *secrets)
    metadata = {k: redact(v, *secrets) if isinstance(v, str) else v for k, v in response.metadata.items()}
    if text == response.text and metadata == dict(response.metadata):
        return response
    return replace(response, text=text, metadata=metadata)

"""The one gateway of model calls: cache, replay, budget, bounds, redaction, usage.

Every call to a model goes through :class:`ModelCalls`: the runner's generations, the
judges' verdicts, the embeddings of retrieval and the batch phase's submissions (later:
proposer models). Nothing else reads or writes the response cache or the budget.

Batch mode (``engine.batch``) uses the gateway three ways: its collection mode
(:class:`CollectingCalls`: cache lookups, no call) finds the requests; ``hold_batch``
and ``settle_batch`` budget each batch; ``store_batch`` files the answers under the
keys the synchronous calls have. The first call that reads a batch answer of this run
counts it as a batch call (cost, ``batch_calls``); later reads are cache hits, and a
request its batch failed is that call's error.

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
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, Protocol, Sequence

from ..errors import CacheMiss, LLMOptError, ProviderError
from ..provider._hosted import redact
from ..provider._usage import Usage

if TYPE_CHECKING:
    from ..provider import Provider, Request, Response
    from ..provider._batch import Batcher
    from ..provider.embedding import Embedded, Embedder
    from .budget import Budget, CallLimit
    from .cache import ResponseCache

__all__ = ["CACHE_MODES", "BatchBook", "BatchDeferred", "Call", "CollectingCalls", "ModelCalls", "Pending", "response_usage"]

#: How the response cache is used: read and write ("on"), answers only from the cache
#: with a miss as an error ("replay"), or call again and overwrite ("refresh").
CACHE_MODES = ("on", "replay", "refresh")
#: The limit the calls of the current task count against besides the run's budget.
_LIMIT: "ContextVar[CallLimit | None]" = ContextVar("llmopt_call_limit", default=None)


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
        #: The run's batch answers and failures (set by the batch phase, see ``engine.batch``).
        self.batch: BatchBook | None = None
        self._usage: dict[str, Usage] = {}
        self._lock = threading.Lock()
        from .cache import RequestKeys

        self._keys = RequestKeys()

    # -- chat calls -----------------------------------------------------------------

    async def call(self, call: Call) -> "Response":
        """The provider's answer to the request (cached, replayed, budgeted, bounded)."""
        _refuse_surrogates(call)
        key = self._key(call)
        hit = self._lookup(key)
        if hit is not None:
            hit = self._batch_answer(key, hit)
            self._count(call.kind, response_usage(hit))
            return hit
        self._refuse_batch_failure(call, key)
        self._refuse_in_replay(call, key)
        limit = _LIMIT.get()
        estimate = call.provider.estimate_cost(call.request) if limit is not None else 0.0
        if limit is not None:
            limit.take(call.what, estimate)
        try:
            held = await self._hold(call)
        except BaseException:
            if limit is not None:
                limit.settle(estimate, 0.0, made=False)
            raise
        try:
            response = await self._generate(call)
        except BaseException:
            self._settle(held, 0.0)
            if limit is not None:
                limit.settle(estimate, 0.0)
            raise
        self._settle(held, response.cost_usd)
        if limit is not None:
            limit.settle(estimate, response.cost_usd)
        if key is not None and self.cache is not None:
            self.cache.put(key, response)
        self._count(call.kind, response_usage(response))
        return response

    @contextmanager
    def limited(self, limit: "CallLimit") -> Iterator["CallLimit"]:
        """Count every call made inside the block (in this task and the tasks it starts)
        against ``limit`` as well: a search's own budget."""
        token = _LIMIT.set(limit)
        try:
            yield limit
        finally:
            _LIMIT.reset(token)

    def usage(self, kind: str) -> Usage:
        """What the calls of ``kind`` used so far (cache hits included)."""
        with self._lock:
            return self._usage.get(kind) or Usage()

    def _key(self, call: Call) -> str | None:
        if self.cache is None or not call.provider.cacheable:
            return None
        provider = call.provider
        return self._keys.key(
            call.provider_name, provider.identity(), call.request, include_case=provider.cache_includes_case
        )

    def _lookup(self, key: str | None) -> "Response | None":
        if key is None or self.cache is None:
            return None
        if self.mode == "refresh" and (self.batch is None or not self.batch.fresh(key)):
            return None  # refresh: only this run's own batch answers are read back
        return self.cache.get(key)

    # -- batch calls (see engine.batch) ----------------------------------------------

    def key_of(self, call: Call) -> str | None:
        """The response cache key of ``call`` (None: not cacheable, or no cache)."""
        return self._key(call)

    def cached(self, key: str | None) -> "Response | None":
        """The answer the cache holds for ``key`` as a call would read it, without
        counting it as used."""
        return self._lookup(key)

    def store_batch(self, provider: "Provider", answers: "Sequence[tuple[str, Response]]") -> None:
        """Keep the answers of a provider's batch API in the response cache (redacted),
        each under the key its synchronous call has: evaluation reads them from there."""
        if self.cache is None:
            raise LLMOptError("batch answers are kept in the response cache: it cannot be off")
        secrets = provider.secrets()
        self.cache.put_many([(key, _redacted_response(response, secrets)) for key, response in answers])

    def redacted(self, provider: "Provider", message: str) -> str:
        """A provider's message without its secrets (a batch request's error)."""
        return redact(message, *provider.secrets())

    def hold_batch(self, what: str, estimate_usd: float, calls: int) -> float | None:
        """Hold a batch's estimated cost against the run's budget before it is
        submitted; BudgetExceeded (its ``calls`` counted as not made) when it does not
        fit now. None without a budget."""
        if self.budget is None:
            return None
        return self.budget.hold_now(what, estimate_usd, calls)

    def settle_batch(self, held: float | None, cost_usd: float) -> None:
        """Release a batch's hold and record what its answers cost."""
        self._settle(held, cost_usd)

    def collecting(self, sink: Callable[["Pending"], None], *, everywhere: bool) -> "CollectingCalls":
        """This gateway in the batch phase's collection pass (see :class:`CollectingCalls`)."""
        return CollectingCalls(self, sink, everywhere=everywhere)

    def _batch_answer(self, key: str | None, hit: "Response") -> "Response":
        """A hit that this run's batch answered is this run's call (paid once)."""
        if key is None or self.batch is None or not self.batch.consume(key):
            return hit
        return replace(hit, cached=False)

    def _refuse_batch_failure(self, call: Call, key: str | None) -> None:
        failure = self.batch.failure(key) if key is not None and self.batch is not None else None
        if failure is not None:
            raise ProviderError(f"{call.what}: {failure}")

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
        if call.gate is None:
            response = await self._guarded(call.provider, call.provider_name, lambda: call.provider.generate(call.request))
        else:
            async with call.gate:
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
        limit = _LIMIT.get()
        if limit is not None:
            limit.take(what, 0.0)
        try:
            held = None if self.budget is None or embedder.free else await self.budget.hold(what, 0.0)
        except BaseException:
            if limit is not None:
                limit.settle(0.0, 0.0, made=False)
            raise
        try:
            embedded = await self._guarded(embedder, "embedding", lambda: embedder.embed(texts))
        except BaseException:
            self._settle(held, 0.0)
            if limit is not None:
                limit.settle(0.0, 0.0)
            raise
        self._settle(held, embedded.cost_usd)
        if limit is not None:
            limit.settle(0.0, embedded.cost_usd)
        self._count("embedding", Usage(input_tokens=embedded.input_tokens, cost_usd=embedded.cost_usd, calls=1))
        return embedded

    def _count(self, kind: str, usage: Usage) -> None:
        with self._lock:
            found = self._usage.get(kind)
            self._usage[kind] = usage if found is None else found + usage


def response_usage(r: "Response") -> Usage:
    """What one response used: a cache hit spent nothing (its original cost is kept
    apart, as ``cached_cost_usd``); an answer of this run's batch is a batch call."""
    spent, saved = (0.0, r.cost_usd) if r.cached else (r.cost_usd, 0.0)
    batched = int(not r.cached and BATCH_ID in r.metadata)
    return Usage(r.input_tokens, r.output_tokens, spent, int(r.cached), int(not r.cached), saved, batched)


#: The metadata key of an answer that came through a provider's batch API.
BATCH_ID = "batch_id"


class BatchBook(Protocol):
    """What the batch phase knows during evaluation (``engine.batch``)."""

    def fresh(self, key: str) -> bool:
        """Whether this run's batches answered ``key`` and no call has used it yet."""

    def consume(self, key: str) -> bool:
        """Mark this run's batch answer of ``key`` used; True the first time only
        (across processes), so its cost is counted once."""

    def failure(self, key: str) -> str | None:
        """The provider's message when this run's batch failed the request."""


class BatchDeferred(LLMOptError):
    """Raised inside the collection pass: the call waits for a batch (never reported)."""


@dataclass(frozen=True)
class Pending:
    """A request the collection pass found for a batch: its key, call and batch API."""

    key: str
    call: Call
    batcher: "Batcher"


class CollectingCalls(ModelCalls):
    """The gateway in the batch phase's collection pass: it answers from the cache,
    hands every miss a batch can carry to ``sink``, and makes no call.

    A generation waiting for a batch gets an empty placeholder, so the case's other
    repeats are collected too; the judge calls of such a case are not (they need the
    real output: a later round collects them). Embeddings are made as usual (through
    the run's gateway): prompts need their retrieval. ``everywhere``: every model with
    a batch API (``--llmopt-batch``), else only those with ``model.batch: true``.
    """

    def __init__(self, base: ModelCalls, sink: Callable[[Pending], None], *, everywhere: bool) -> None:
        super().__init__(base.cache, base.mode, base.budget)
        self.base = base
        self.batch = base.batch
        self.sink = sink
        self.everywhere = everywhere
        #: Whether some call could not be collected before earlier answers exist (a
        #: judge of an output still to come): another round may find more.
        self.blocked = False
        self._waiting: set[int] = set()

    async def call(self, call: Call) -> "Response":
        _refuse_surrogates(call)
        key = self._key(call)
        hit = self._lookup(key)
        if hit is not None:
            return hit
        self._refuse_batch_failure(call, key)
        if id(call.request.case) in self._waiting:
            self.blocked = True
            raise BatchDeferred(f"{call.what}: needs an answer still to come")
        batcher = self._batcher(call)
        if key is None or batcher is None:
            raise BatchDeferred(f"{call.what}: answered after the batch phase")
        self.sink(Pending(key, call, batcher))
        if call.kind != "generation":
            self.blocked = True  # the case's later calls (another judge) wait for this one
            raise BatchDeferred(f"{call.what}: waits for a batch")
        self._waiting.add(id(call.request.case))
        from ..provider import Response

        return Response(text="")

    async def embed(self, embedder: "Embedder", texts: Sequence[str], what: str, *, cached: bool = False) -> "Embedded":
        return await self.base.embed(embedder, texts, what, cached=cached)

    def _batcher(self, call: Call) -> "Batcher | None":
        if self.mode == "replay":
            return None
        batcher = call.provider.batcher()
        if batcher is None or batcher.wanted is False:
            return None
        return batcher if batcher.wanted or self.everywhere else None


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

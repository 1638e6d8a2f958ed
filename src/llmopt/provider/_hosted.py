"""What the hosted providers (OpenAI, Anthropic) share: keys, clients per event loop,
the adaptive concurrency bound, timing, cost, error mapping and redaction.

A subclass supplies the SDK-specific parts: how to build the client, how to make one
call, how to read the reply, and how to map each SDK exception.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from ..errors import LLMOptError, ProviderAuthError
from ..spec._model import ModelSpec
from ._base import Request, Response
from ._limits import AdaptiveLimiter, LimiterPool
from ._pricing import check_price, cost_usd, price_for

__all__ = ["HostedProvider", "HostedProviderType", "Reply", "failed_connection", "redact"]

T = TypeVar("T")

_SECRET = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|sk-ant-[A-Za-z0-9_\-*]{6,}|Bearer\s+[A-Za-z0-9_\-.]{8,})")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` without API keys (the given ones, and anything shaped like one)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _SECRET.sub("[redacted]", text)


def failed_connection(exc: BaseException) -> BaseException | None:
    """The failed connection (refused, unreachable) behind ``exc``, if its chain of
    causes holds one that is not a timeout. The SDKs' aiohttp transport reports a
    refused connection as a connect timeout; this tells the two apart."""
    link: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(8):
        if link is None:
            return None
        if isinstance(link, OSError) and not isinstance(link, TimeoutError):
            return link
        link = link.__cause__ or link.__context__
    return None


def _long_lived(make: Callable[[], T]) -> T:
    """``make()`` (which imports an SDK the first time), with its objects kept out of
    the garbage collector's way.

    Importing an SDK creates a few hundred thousand objects (its typed models) that live
    as long as the process. The collector is paused while they are made, and what is
    alive afterwards is frozen, so no later full collection (nor the one at interpreter
    exit) walks them again: about half a second of a 1,000-call run.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return make()
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()


@dataclass(frozen=True)
class Reply:
    """What a subclass reads out of one SDK response."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    model: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


class HostedProviderType(ABC):
    """A hosted API: holds the run-wide concurrency limiters (per base URL)."""

    name: str = ""
    #: The environment variable holding the API key.
    env_var: str = ""
    default_concurrency: int = 8

    def __init__(self) -> None:
        self.limiters = LimiterPool()

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        """Problems found without any call: a model id, a sound price and base URL."""
        problems = [] if spec.id else [f"model.id is required for the {self.name} provider"]
        problems += check_price(spec.price)
        if spec.base_url and not re.match(r"^https?://", spec.base_url):
            problems.append(f"model.base_url must start with http:// or https://, got {spec.base_url!r}")
        key_env = spec.options.get("api_key_env")
        if key_env is not None and not isinstance(key_env, str):
            problems.append("model.options.api_key_env must be the name of an environment variable")
        return problems

    @abstractmethod
    def create(self, spec: ModelSpec, base_dir: Path) -> "HostedProvider":
        """The provider for ``spec``."""


DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 4


class HostedProvider(ABC):
    """One model behind a hosted API. Cacheable; one SDK client per event loop."""

    cacheable = True
    #: HTTP statuses that mean "slow down": each such attempt halves the concurrency.
    rate_limited_statuses: frozenset[int] = frozenset({429})

    def __init__(self, spec: ModelSpec, ptype: HostedProviderType) -> None:
        self.spec = spec
        self.ptype = ptype
        self.concurrency = spec.concurrency or ptype.default_concurrency
        self.limiter: AdaptiveLimiter = ptype.limiters.get((ptype.name, spec.base_url or ""), self.concurrency)
        self.price = price_for(spec.id, spec.price)
        self.env_var = str(spec.options.get("api_key_env") or ptype.env_var)
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._auth_error: ProviderAuthError | None = None

    def identity(self) -> Mapping[str, Any]:
        return {"model": self.spec.id, "base_url": self.spec.base_url}

    @property
    def timeout_s(self) -> float:
        """Seconds per request: ``model.timeout``, else 60."""
        return float(self.spec.timeout or DEFAULT_TIMEOUT_S)

    @property
    def max_retries(self) -> int:
        """The SDK's retries (retry-after aware): ``model.max_retries``, else 4."""
        return self.spec.max_retries if self.spec.max_retries is not None else DEFAULT_MAX_RETRIES

    def sdk_client(self, sdk: Any, client_class: Any, api_key: str) -> Any:
        """An SDK client (``AsyncOpenAI``, ``AsyncAnthropic`` of the module ``sdk``) with
        the spec's timeout and retries, on an HTTP client whose response hook feeds the
        limiter."""
        return client_class(
            api_key=api_key,
            base_url=self.spec.base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
            http_client=self._http_client(sdk),
        )

    def _http_client(self, sdk: Any) -> Any:
        """The SDK's aiohttp transport when aiohttp is installed (the ``openai`` and
        ``anthropic`` extras install it: it takes about a third less CPU per call than
        the default transport), else the SDK's default HTTP client."""
        options = {"timeout": self.timeout_s, "event_hooks": {"response": [self.on_http_response]}}
        if importlib.util.find_spec("aiohttp") is not None:
            try:
                return sdk.DefaultAioHttpClient(**options)
            except RuntimeError:  # the SDK could not load its aiohttp transport
                pass
        return sdk.DefaultAsyncHttpxClient(**options)

    async def on_http_response(self, response: Any) -> None:
        """An HTTP response hook for the SDK's client: it sees every attempt, the
        retried ones included, so rate limits lower the concurrency at once."""
        if response.status_code in self.rate_limited_statuses:
            self.limiter.on_rate_limited()

    def api_key(self) -> str:
        """The key from the environment; a missing key fails closed."""
        key = os.environ.get(self.env_var, "").strip()
        if not key:
            raise ProviderAuthError(
                f"{self.ptype.name}: no API key: set the environment variable {self.env_var}"
            )
        return key

    async def generate(self, request: Request) -> Response:
        if self._auth_error is not None:
            raise self._auth_error
        client = self._client_for_loop()
        async with self.limiter:
            started = time.perf_counter()
            try:
                raw = await self.call(client, request)
            except Exception as exc:  # mapped at the boundary, below
                raise self._mapped(exc) from None
            latency = time.perf_counter() - started
        self.limiter.on_success()
        reply = self.read(raw)
        return Response(
            text=reply.text,
            latency_s=latency,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cached_input_tokens=reply.cached_input_tokens,
            model=reply.model,
            cost_usd=cost_usd(self.price, reply.input_tokens, reply.output_tokens, reply.cached_input_tokens),
            metadata=dict(reply.metadata),
        )

    async def aclose(self) -> None:
        """Close the SDK client of the current event loop (the runner calls this)."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()

    def _client_for_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = _long_lived(lambda: self.make_client(self.api_key()))
            self._client_loop = loop
        return self._client

    def _mapped(self, exc: Exception) -> LLMOptError:
        if isinstance(exc, LLMOptError):
            return exc
        mapped = self.map_error(exc)
        message = redact(str(mapped), os.environ.get(self.env_var))
        mapped = type(mapped)(message)
        if isinstance(mapped, ProviderAuthError):
            self._auth_error = mapped
        return mapped

    @abstractmethod
    def make_client(self, api_key: str) -> Any:
        """The SDK's async client (timeouts and retries from the spec; rate-limited
        attempts reported to ``self.limiter.on_rate_limited``)."""

    @abstractmethod
    async def call(self, client: Any, request: Request) -> Any:
        """One API call for ``request``."""

    @abstractmethod
    def read(self, raw: Any) -> Reply:
        """Text, usage and metadata of a response; ProviderError for a refusal."""

    @abstractmethod
    def map_error(self, exc: Exception) -> LLMOptError:
        """llmopt's error for an SDK exception (ProviderAuthError for credentials)."""

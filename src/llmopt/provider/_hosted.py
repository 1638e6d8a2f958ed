"""What the hosted providers (OpenAI, Anthropic) share: keys, clients per event loop,
the adaptive concurrency bound, retries within the request's time budget (see
``_retry``), timing, cost, error mapping and redaction.

A subclass supplies the SDK-specific parts: how to build the client, how to make one
call, how to read the reply, and how to map each SDK exception.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

from ..errors import LLMOptError, ProviderAuthError
from ..spec._model import ModelSpec
from ._base import ProviderBase, Request, Response
from ._limits import AdaptiveLimiter, LimiterPool
from ._pricing import Price, check_price, cost_usd, price_for
from ._retry import RetryPolicy, failed_connection, retry_delay

__all__ = [
    "HostedProvider",
    "HostedProviderType",
    "Reply",
    "attempt_options",
    "failed_connection",
    "redact",
    "retries_of",
]

T = TypeVar("T")

#: Anything shaped like a key: ``sk-`` keys (whole, or masked as servers echo them:
#: ``sk-proj-****wxyz``, ``sk-...wxyz``) and bearer tokens (12 or more characters, a
#: digit among them, so "the bearer instruments" stays as it is).
_SECRET = re.compile(
    r"\bsk-[A-Za-z0-9_\-*]*(?:\.{2,}|\u2026)[A-Za-z0-9_\-*]*[A-Za-z0-9_*]"
    r"|\bsk-[A-Za-z0-9_\-*]{6,}"
    r"|(?i:\bBearer)\s+(?=[A-Za-z_\-.~+/=]*\d)[A-Za-z0-9_\-.~+/=]{12,}"
)
#: A run of the characters keys are made of.
_RUN = re.compile(r"[A-Za-z0-9_\-]+")
#: How servers mask the hidden part of a key they echo: stars, dots, an ellipsis, bullets.
_MASK_BEFORE = re.compile(r"(?:\*{2,}|\.{3,}|\u2026|\u2022{2,})\s?$")
_MASK_AFTER = re.compile(r"\s?(?:\*{2,}|\.{3,}|\u2026|\u2022{2,})")
#: A key's public prefix (``sk-proj-``, ``sk-ant-api03-``): not secret on its own.
_PUBLIC_PREFIX = re.compile(r"^(?:[a-z0-9]{2,8}-)+")
#: Below this length a secret is only redacted where it appears whole.
_FRAGMENT_MIN_SECRET = 12
_REDACTED = "[redacted]"


def redact(text: str, *secrets: str | None) -> str:
    """``text`` without API keys: the given ones, the fragments of them servers echo
    (8 or more of a key's characters, or its last 4+ or first 6+ characters beside a
    mask such as ``****``, ``...``), and anything shaped like a key."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, _REDACTED)
    if "sk-" in text or "bearer" in text.lower():  # what every match of _SECRET holds (as the
        text = _SECRET.sub(_REDACTED, text)         # pattern's case-blind "Bearer" matches it)
    for secret in secrets:
        if secret and len(secret) >= _FRAGMENT_MIN_SECRET:
            text = _without_fragments(text, secret)
    return text


def _without_fragments(text: str, secret: str) -> str:
    """``text`` with the pieces of ``secret`` it quotes replaced (masks included)."""
    masked = "**" in text or "..." in text or "\u2026" in text or "\u2022\u2022" in text
    if _grams(secret, 4 if masked else 8).search(text) is None:
        return text  # every piece looked for below holds 4 characters of the key in a row,
        # and without a mask beside it, 8 (a whole run of 8 or more, see below)
    return _cut_fragments(text, secret)


def _cut_fragments(text: str, secret: str) -> str:
    """:func:`_without_fragments` without the screen: every run of key characters looked at."""
    public = _PUBLIC_PREFIX.match(secret)
    prefix = public.group(0) if public else ""
    spans: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        piece, (start, end) = run.group(0), run.span()
        if len(piece) < 4 or piece not in secret:
            continue
        before = _MASK_BEFORE.search(text, max(0, start - 12), start)
        after = _MASK_AFTER.match(text, end)
        whole = len(piece) >= 8 and piece not in prefix
        tail = before is not None and secret.endswith(piece)
        head = after is not None and len(piece) >= 6 and secret.startswith(piece) and piece != prefix
        if whole or tail or head:
            spans.append((before.start() if before else start, after.end() if after else end))
    for start, end in reversed(spans):
        text = text[:start] + _REDACTED + text[end:]
    return text


@functools.lru_cache(maxsize=32)
def _grams(secret: str, size: int) -> "re.Pattern[str]":
    """Finds any ``size`` characters in a row of ``secret``."""
    grams = sorted({secret[i : i + size] for i in range(len(secret) - size + 1)})
    return re.compile("|".join(map(re.escape, grams)))


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
#: Where a mapped SDK exception carries the retries made before it (see ``retries_of``).
RETRIES_ATTRIBUTE = "llmopt_retries"


def retries_of(exc: BaseException, default: int) -> int:
    """The retries made before ``exc`` ended a request (``default`` when not recorded)."""
    found = getattr(exc, RETRIES_ATTRIBUTE, None)
    return found if isinstance(found, int) else default


def attempt_options(options: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """The SDK request options of one attempt: no SDK retries (the provider retries),
    and the smaller of the request's own timeout and what is left of its budget."""
    asked = options.get("timeout")
    if isinstance(asked, (int, float)) and not isinstance(asked, bool):
        timeout = min(float(asked), timeout)
    return {**options, "max_retries": 0, "timeout": timeout}


class HostedProvider(ProviderBase, ABC):
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
        self._batcher: Any = None

    def identity(self) -> Mapping[str, Any]:
        return {"model": self.spec.id, "base_url": self.spec.base_url}

    def secrets(self) -> Sequence[str]:
        """The API key, redacted by the call gateway from every error message."""
        key = os.environ.get(self.env_var, "").strip()
        return (key,) if key else ()

    def estimate_cost(self, request: Request) -> float:
        """An upper estimate: about a token per 3 characters of the messages, and
        ``max_tokens`` (else 1,024) of output, at the model's price (0 when unpriced)."""
        return self.estimate_at(self.price, request)

    def estimate_at(self, price: Price | None, request: Request) -> float:
        """:meth:`estimate_cost` at ``price`` (the batch rates, for a batch)."""
        if price is None:
            return 0.0
        chars = sum(len(str(m.get("content", ""))) for m in request.messages)
        output = request.params.get("max_tokens") or request.params.get("max_completion_tokens") or 1024
        return cost_usd(price, chars // 3 + 16, int(output), 0)

    @property
    def timeout_s(self) -> float:
        """Seconds per request: ``model.timeout``, else 60."""
        return float(self.spec.timeout or DEFAULT_TIMEOUT_S)

    @property
    def max_retries(self) -> int:
        """The SDK client's own retries, for the calls that use them (embeddings, the
        fine-tuning API): ``model.max_retries``, else 4. Chat calls retry in
        :meth:`generate` instead, within the time budget."""
        return self.spec.max_retries if self.spec.max_retries is not None else DEFAULT_MAX_RETRIES

    #: The first wait between attempts without a retry-after, doubling up to ``retry_cap_s``.
    retry_base_s: float = 0.5
    retry_cap_s: float = 8.0

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retries of a chat call: transient failures within ``model.timeout`` (every
        attempt and wait included), at most ``model.max_retries`` when it is set."""
        return RetryPolicy(self.timeout_s, self.spec.max_retries, self.retry_base_s, self.retry_cap_s, DEFAULT_MAX_RETRIES)

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
        started = time.perf_counter()
        raw = await self._attempts(client, request, started + self.timeout_s)
        latency = time.perf_counter() - started
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

    async def _attempts(self, client: Any, request: Request, deadline: float) -> Any:
        """The first answer of the attempts at ``request``: a transient failure is tried
        again after its wait (the limiter's slot is given back meanwhile) while the
        deadline allows; the last failure is mapped at the boundary."""
        policy = self.retry_policy
        retries = 0
        while True:
            async with self.limiter:
                try:
                    raw = await self.call(client, request, max(0.001, deadline - time.perf_counter()))
                except Exception as exc:  # mapped at the boundary, below
                    failure = exc
                else:
                    self.limiter.on_success()
                    return raw
            left = deadline - time.perf_counter()
            wait = None if isinstance(failure, LLMOptError) else retry_delay(failure, retries, left, policy)
            if wait is None:
                raise self._mapped(failure, retries) from None
            await asyncio.sleep(wait)
            retries += 1

    async def aclose(self) -> None:
        """Close the SDK client of the current event loop (the runner calls this)."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()

    def _client_for_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = self.make_client(self.api_key())
            self._client_loop = loop
        return self._client

    def _mapped(self, exc: Exception, retries: int | None = None) -> LLMOptError:
        """llmopt's error for ``exc`` (keys redacted); ``retries``, the retries made
        before it, is recorded on ``exc`` for the message (see ``retries_of``)."""
        if isinstance(exc, LLMOptError):
            return exc
        if retries is not None:
            try:
                setattr(exc, RETRIES_ATTRIBUTE, retries)
            except AttributeError:  # an exception type without a __dict__
                pass
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
    async def call(self, client: Any, request: Request, timeout: float) -> Any:
        """One attempt at ``request``, without the SDK's own retries (see
        ``attempt_options``), answered within ``timeout`` seconds (what is left of the
        request's budget)."""

    @abstractmethod
    def request_body(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        """The API's request body and the SDK's request options for ``request``: what
        a synchronous call and a batch entry send alike (so both share a cache key)."""

    @abstractmethod
    def read(self, raw: Any) -> Reply:
        """Text, usage and metadata of a response; ProviderError for a refusal."""

    @abstractmethod
    def map_error(self, exc: Exception) -> LLMOptError:
        """llmopt's error for an SDK exception (ProviderAuthError for credentials)."""

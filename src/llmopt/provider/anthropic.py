"""The ``anthropic`` provider: Claude models through the official SDK's async client.

Messages API; the recipe's system message becomes ``system``; ``model.params`` pass
through (``stop`` is accepted for ``stop_sequences``; ``max_tokens`` defaults to 1024).
The provider retries transient failures within ``model.timeout`` (see ``_retry``);
every HTTP response, retried attempts included, reaches an event hook that lowers the
run's concurrency on 429 and 529. The SDK is imported only when the first client is made.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping  # not typing's alias: isinstance on it costs several times more
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Sequence

from ..errors import LLMOptError, ProviderAuthError, ProviderError, ProviderUnavailable
from ..spec._model import ModelSpec
from ._base import Message, Request
from ._hosted import HostedProvider, HostedProviderType, Reply, attempt_options, failed_connection, redact, retries_of

__all__ = ["AnthropicProvider", "AnthropicProviderType", "ERROR_KINDS", "error_kind"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 1024
#: HTTP statuses that mean "slow down": 429 rate limited, 529 overloaded.
#: Request fields llmopt sets itself; a spec may not set them in ``model.params``.
RESERVED_PARAMS = frozenset({"model", "messages", "system", "stream"})
#: Parameters that are options of the SDK's request rather than fields of the body.
_OPTION_PARAMS = {"extra_headers": "headers", "extra_query": "params", "timeout": "timeout"}

#: How each exception class of the SDK is reported, by class name (so that this
#: module need not import the SDK). The kinds:
#:   auth        the key was refused: ProviderAuthError naming the variable (stops the scenario)
#:   credentials no usable credentials: ProviderAuthError naming the variable
#:   account     the account cannot serve any request (billing, holds, spend limits,
#:               encryption keys, URL sources and web fetch turned off for the
#:               organization): ProviderUnavailable (stops the variant)
#:   not_found   the model does not exist: ProviderUnavailable naming the model id
#:   status      any other HTTP error, after the SDK's retries: ProviderError (case error)
#:   timeout     no answer in time: ProviderError
#:   connection  the server could not be reached: ProviderError naming the base URL
#:   invalid     an answer that is not a message: ProviderError
#:   other       an SDK error without an HTTP exchange: ProviderError
#: Aliases (DeadlineExceededError, RequestTooLargeError) share their target's name.
ERROR_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "AnthropicError": "other",
        "APIError": "other",
        "RetryableError": "other",
        "APIWebhookValidationError": "other",
        "APIResponseValidationError": "invalid",
        "APIConnectionError": "connection",
        "APITimeoutError": "timeout",
        "CredentialsError": "credentials",
        "IdentityTokenFileError": "credentials",
        "WorkloadIdentityError": "credentials",
        "AuthenticationError": "auth",
        "PermissionDeniedError": "auth",
        "NotFoundError": "not_found",
        "APIStatusError": "status",
        "BadRequestError": "status",
        "RequestTimeoutError": "status",
        "ConflictError": "status",
        "PreconditionFailedError": "status",
        "ContentTooLargeError": "status",
        "UnprocessableEntityError": "status",
        "RateLimitError": "status",
        "RequestHeaderFieldsTooLargeError": "status",
        "ClientClosedRequestError": "status",
        "InternalServerError": "status",
        "HTTPNotImplementedError": "status",
        "ServiceUnavailableError": "status",
        "StorageNotReadyError": "status",
        "GatewayTimeoutError": "status",
        "OverloadedError": "status",
        "RampLimitExceededError": "status",
        "CMEKContextUnavailableError": "status",
        "CMEKKeyUnreachableError": "status",
        "RequestBodyEncodingInvalidError": "status",
        "RequestBodyEncodingUnsupportedError": "status",
        "RequestBodyTooLargeAfterDecodingError": "status",
        "PaymentRequiredError": "account",
        "LinkedOrganizationBillingUnavailableError": "account",
        "LinkedOrganizationSpendLimitReachedError": "account",
        "ContractSpendLimitReachedError": "account",
        "EnforcedSpendLimitReachedError": "account",
        "OrganizationOnHoldError": "account",
        "OrganizationTypeNotSupportedError": "account",
        "ParentOrganizationRequiredError": "account",
        "WorkspaceHumanReviewDisabledError": "account",
        "ClaudeCodeKeyCreatorNotMemberError": "account",
        "ClaudeCodeVersionTooOldError": "account",
        "CMEKKeyDisabledError": "account",
        "CMEKKeyNetworkBlockedError": "account",
        "SandboxEgressRestrictedError": "account",
        "OrganizationURLFetchDisabledError": "account",
    }
)


def error_kind(exc: BaseException) -> str | None:
    """The kind of an SDK exception: its own class's entry in ERROR_KINDS, else its
    nearest SDK ancestor's (for the SDK's many error-code subclasses); None when
    ``exc`` is not an SDK exception."""
    for cls in type(exc).__mro__:
        if cls.__module__.split(".")[0] == "anthropic" and cls.__name__ in ERROR_KINDS:
            return ERROR_KINDS[cls.__name__]
    return None


class AnthropicProviderType(HostedProviderType):
    """``model: {provider: anthropic, id: claude-..., base_url?, params?}``."""

    name = "anthropic"
    env_var = "ANTHROPIC_API_KEY"

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        problems = super().check(spec, base_dir)
        problems += [
            f"model.params.{key} is set by llmopt for the anthropic provider: remove it"
            for key in sorted(RESERVED_PARAMS & set(spec.params))
        ]
        if "stop" in spec.params and "stop_sequences" in spec.params:
            problems.append("model.params: give stop or stop_sequences, not both")
        return problems

    def create(self, spec: ModelSpec, base_dir: Path) -> "AnthropicProvider":
        return AnthropicProvider(spec, self)


class AnthropicProvider(HostedProvider):
    """One Claude model behind the Anthropic API (or a compatible ``base_url``)."""

    rate_limited_statuses = frozenset({429, 529})  # 529: overloaded

    @property
    def base_url(self) -> str:
        """Where requests go (the SDK also honours ANTHROPIC_BASE_URL)."""
        return self.spec.base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL

    # -- the SDK client -------------------------------------------------------------

    def make_client(self, api_key: str) -> Any:
        import anthropic

        return self.sdk_client(anthropic, anthropic.AsyncAnthropic, api_key)

    def batcher(self) -> Any:
        """Anthropic's Message Batches for this model (see ``_anthropic_batch``), made once."""
        if self._batcher is None:
            from ._anthropic_batch import AnthropicBatcher

            self._batcher = AnthropicBatcher(self)
        return self._batcher

    # -- one call -------------------------------------------------------------------

    async def call(self, client: Any, request: Request, timeout: float) -> Any:
        body, options = self.request_body(request)
        # The client's generic POST keeps the SDK's auth, timeouts and errors but skips
        # its typed request transform and response models (see the openai provider:
        # they cost more CPU per call than the HTTP exchange).
        sent = attempt_options(options, timeout)
        return await client.post("/v1/messages", body=body, options=sent, cast_to=object)

    def request_body(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        """The Messages API body and the SDK request options: every parameter goes into
        the body as it is (``extra_body`` merged in), ``extra_headers`` and
        ``extra_query`` become request options."""
        system, messages = _split_system(request.messages)
        params = _normalized(request.params)
        options = {option: params.pop(name) for name, option in _OPTION_PARAMS.items() if name in params}
        extra = params.pop("extra_body", None) or {}
        body: dict[str, Any] = {"model": self.spec.id, "messages": messages, **params}
        if system:
            body["system"] = system
        return {**body, **extra}, options

    # -- the answer -----------------------------------------------------------------

    def read(self, raw: Any) -> Reply:
        content = _field(raw, "content")
        if not isinstance(content, list):
            shown = redact(_shorten(str(raw)), os.environ.get(self.env_var))
            raise ProviderError(f"anthropic: the answer from {self.base_url} is not a message: {shown}")
        stop_reason = _field(raw, "stop_reason")
        if stop_reason == "refusal":
            raise ProviderError(f"anthropic: refused: {_refusal_detail(raw)}")
        text = "".join(str(_field(b, "text") or "") for b in content if _field(b, "type") == "text")
        if not text:
            raise ProviderError(f"anthropic: the answer holds no text (stop_reason: {stop_reason})")
        model = _field(raw, "model")
        return Reply(
            text=text,
            model=model if isinstance(model, str) else None,
            metadata={"stop_reason": stop_reason},
            **_usage(raw),
        )

    # -- errors ---------------------------------------------------------------------

    def map_error(self, exc: Exception) -> LLMOptError:
        kind = error_kind(exc)
        if kind == "timeout" and failed_connection(exc) is not None:
            kind = "connection"
        if kind is not None:
            return self._builders()[kind](exc)
        if isinstance(exc, json.JSONDecodeError):
            return ProviderError(f"anthropic: the answer from {self.base_url} is not valid JSON: {exc}")
        return ProviderError(f"anthropic: {type(exc).__name__}: {_shorten(str(exc))}")

    def _builders(self) -> Mapping[str, Callable[[Exception], LLMOptError]]:
        return {
            "auth": self._as_auth,
            "credentials": self._as_credentials,
            "account": self._as_account,
            "not_found": self._as_not_found,
            "status": self._as_status,
            "timeout": self._as_timeout,
            "connection": self._as_connection,
            "invalid": self._as_invalid,
            "other": self._as_other,
        }

    def _as_auth(self, exc: Exception) -> LLMOptError:
        return ProviderAuthError(
            f"anthropic: the API key in {self.env_var} was refused by {self.base_url} ({_status_text(exc)})"
        )

    def _as_credentials(self, exc: Exception) -> LLMOptError:
        return ProviderAuthError(f"anthropic: no usable credentials ({_shorten(str(exc))}): set {self.env_var}")

    def _as_account(self, exc: Exception) -> LLMOptError:
        return ProviderUnavailable(f"anthropic: the account cannot serve requests ({_status_text(exc)})")

    def _as_not_found(self, exc: Exception) -> LLMOptError:
        return ProviderUnavailable(
            f"anthropic: model {self.spec.id!r} not found at {self.base_url} ({_status_text(exc)})"
        )

    def _as_status(self, exc: Exception) -> LLMOptError:
        return ProviderError(f"anthropic: {_status_text(exc)}{_after_retries(exc)}")

    def _as_timeout(self, exc: Exception) -> LLMOptError:
        return ProviderError(
            f"anthropic: no answer from {self.base_url} within {self.timeout_s:g} s{_after_retries(exc)}"
        )

    def _as_connection(self, exc: Exception) -> LLMOptError:
        link = failed_connection(exc) or exc.__cause__
        cause = f": {link}" if link is not None and str(link) else ""
        return ProviderError(f"anthropic: could not connect to {self.base_url}{cause}{_after_retries(exc)}")

    def _as_invalid(self, exc: Exception) -> LLMOptError:
        return ProviderError(f"anthropic: the answer from {self.base_url} could not be read: {_shorten(str(exc))}")

    def _as_other(self, exc: Exception) -> LLMOptError:
        return ProviderError(f"anthropic: {type(exc).__name__}: {_shorten(str(exc))}")


# -- request helpers -------------------------------------------------------------------


def _split_system(messages: Sequence[Message]) -> tuple[str, list[dict[str, str]]]:
    """The system prompt (system messages joined) and the other messages."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    rest = [{"role": m["role"], "content": m["content"]} for m in messages if m.get("role") != "system"]
    return system, rest


def _normalized(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``stop`` as ``stop_sequences``, a default ``max_tokens``, and
    the fields llmopt sets itself left out."""
    out = {k: v for k, v in params.items() if k not in RESERVED_PARAMS}
    if "stop" in out:
        stop = out.pop("stop")
        out.setdefault("stop_sequences", [stop] if isinstance(stop, str) else list(stop or []))
    out.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    return out


def _field(data: Any, key: str) -> Any:
    """``data[key]`` when ``data`` is a JSON object, else None."""
    return data.get(key) if isinstance(data, Mapping) else None


def _tokens(usage: Any, key: str) -> int:
    value = _field(usage, key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(raw: Any) -> dict[str, int]:
    """Tokens of a message. Anthropic counts cache reads and writes apart from
    ``input_tokens``; here input includes both, and cache reads are the cached part
    (cache writes are priced as plain input)."""
    usage = _field(raw, "usage")
    read = _tokens(usage, "cache_read_input_tokens")
    return {
        "input_tokens": _tokens(usage, "input_tokens") + read + _tokens(usage, "cache_creation_input_tokens"),
        "output_tokens": _tokens(usage, "output_tokens"),
        "cached_input_tokens": read,
    }


def _refusal_detail(raw: Any) -> str:
    details = _field(raw, "stop_details")
    parts = [_field(details, "category"), _field(details, "explanation")]
    return ": ".join(str(p) for p in parts if p) or "the model declined to answer"


# -- error helpers ---------------------------------------------------------------------


def _status_text(exc: Exception) -> str:
    """``HTTP 529 OverloadedError: Overloaded``: the status and the server's message."""
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc)
    head = f"HTTP {status} {type(exc).__name__}" if status is not None else type(exc).__name__
    return f"{head}: {_shorten(str(message))}"


def _after_retries(exc: Exception) -> str:
    """`` after N retries`` when the request was retried (by the provider, else by the
    SDK, which numbers each attempt's request)."""
    request = getattr(exc, "request", None)
    headers = getattr(request, "headers", None)
    try:
        counted = int(headers.get("x-stainless-retry-count", 0)) if headers is not None else 0
    except (TypeError, ValueError):
        counted = 0
    retries = retries_of(exc, counted)
    return f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

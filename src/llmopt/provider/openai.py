"""The ``openai`` provider: Chat Completions through the official SDK's async client.

Also serves OpenAI-compatible servers (vLLM, Ollama, llama.cpp server, gateways) through
``model.base_url``; fine-tuned ids (``ft:...``) are plain model ids. The SDK is imported
only when a client is built or an error is mapped, so importing this module is cheap.

Chat calls are retried by the provider within ``model.timeout`` (see ``_retry``:
backoff, retry-after, as many attempts as fit); an event hook on the HTTP client reports
every rate-limited attempt (429, 503), retried ones included, to the adaptive limiter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping  # not typing's alias: isinstance on it costs several times more
from pathlib import Path
from typing import Any

from ..errors import LLMOptError, ProviderAuthError, ProviderError, ProviderUnavailable
from ..spec._model import ModelSpec
from ._base import Request
from ._hosted import HostedProvider, HostedProviderType, Reply, attempt_options, failed_connection, retries_of

__all__ = ["OpenAIProvider", "OpenAIProviderType", "chat_request", "error_table"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: HTTP statuses that mean "slow down": each attempt answered so lowers the concurrency.
#: Request fields llmopt sets itself; a spec may not pass them as params.
_RESERVED_PARAMS = ("model", "messages", "stream")

_CONNECTION_TEMPLATE = "could not connect to {base_url} ({retries}): {cause}"
#: Every exception class the SDK exports, most specific first: (class name, llmopt error
#: kind, message template). Templates may use {status}, {server}, {env}, {model},
#: {base_url}, {retries}, {timeout} and {cause}.
_ERRORS: tuple[tuple[str, type[LLMOptError], str], ...] = (
    ("OAuthError", ProviderAuthError, "authentication failed ({status}): check {env}: {server}"),
    ("AuthenticationError", ProviderAuthError, "authentication failed ({status}): check {env}: {server}"),
    (
        "PermissionDeniedError",
        ProviderAuthError,
        "permission denied ({status}): check that the key in {env} may use model {model!r}: {server}",
    ),
    ("NotFoundError", ProviderUnavailable, "model {model!r} not found at {base_url} ({status}): {server}"),
    ("RateLimitError", ProviderError, "rate limited ({status}), still after {retries}: {server}"),
    ("InternalServerError", ProviderError, "server error ({status}), still after {retries}: {server}"),
    ("BadRequestError", ProviderError, "bad request ({status}): {server}"),
    ("ConflictError", ProviderError, "conflict ({status}), still after {retries}: {server}"),
    ("UnprocessableEntityError", ProviderError, "unprocessable request ({status}): {server}"),
    ("APIStatusError", ProviderError, "HTTP error ({status}): {server}"),
    ("APITimeoutError", ProviderError, "request to {base_url} timed out after {timeout}s ({retries})"),
    ("APIConnectionError", ProviderError, _CONNECTION_TEMPLATE),
    (
        "APIResponseValidationError",
        ProviderError,
        "malformed response ({status}): it is not a valid chat completion: {server}",
    ),
    ("APIError", ProviderError, "API error: {server}"),
    ("LengthFinishReasonError", ProviderError, "the answer was cut off at the token limit (finish_reason length)"),
    (
        "ContentFilterFinishReasonError",
        ProviderError,
        "the answer was withheld by the content filter (finish_reason content_filter)",
    ),
    ("SubjectTokenProviderError", ProviderAuthError, "no workload identity token (or set {env}): {server}"),
    ("WebSocketConnectionClosedError", ProviderError, "websocket closed: {server}"),
    ("WebSocketQueueFullError", ProviderError, "websocket send queue full: {server}"),
    ("InvalidWebhookSignatureError", ProviderError, "invalid webhook signature: {server}"),
    ("_AmbiguousModuleClientUsageError", ProviderError, "module-level client misused: {server}"),
    ("OpenAIError", ProviderError, "SDK error: {server}"),
)


def error_table() -> dict[type[BaseException], tuple[type[LLMOptError], str]]:
    """The SDK's exception classes mapped to (llmopt error kind, message template).

    Imports the SDK; classes this SDK version lacks are left out.
    """
    import openai
    from openai import _exceptions

    table: dict[type[BaseException], tuple[type[LLMOptError], str]] = {}
    for name, kind, template in _ERRORS:
        cls = getattr(openai, name, None) or getattr(_exceptions, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            table[cls] = (kind, template)
    return table


#: Parameters that are options of the SDK's request rather than fields of the body.
_OPTION_PARAMS = {"extra_headers": "headers", "extra_query": "params", "timeout": "timeout"}


def chat_request(model: str | None, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Chat Completions body and the SDK request options for ``request``.

    Every parameter goes into the body as it is, so newer API fields and a compatible
    server's own (vLLM's ``top_k``) pass through; ``extra_body`` is merged into the
    body, ``extra_headers`` and ``extra_query`` become request options.
    """
    params = dict(request.params)
    options = {option: params.pop(name) for name, option in _OPTION_PARAMS.items() if name in params}
    extra = params.pop("extra_body", None) or {}
    body = {"model": model, "messages": [dict(message) for message in request.messages], **params, **extra}
    return body, options


class OpenAIProvider(HostedProvider):
    """One model behind the OpenAI Chat Completions API (or a compatible server)."""

    rate_limited_statuses = frozenset({429, 503})

    def identity(self) -> Mapping[str, Any]:
        """Model id and base URL (the SDK's ``OPENAI_BASE_URL`` when the spec has none);
        never the key."""
        return {"model": self.spec.id, "base_url": self.spec.base_url or os.environ.get("OPENAI_BASE_URL") or None}

    @property
    def base_url(self) -> str:
        return self.spec.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL

    def make_client(self, api_key: str) -> Any:
        import openai

        return self.sdk_client(openai, openai.AsyncOpenAI, api_key)

    def batcher(self) -> Any:
        """OpenAI's Batch API for this model (see ``_openai_batch``), made once."""
        if self._batcher is None:
            from ._openai_batch import OpenAIBatcher

            self._batcher = OpenAIBatcher(self)
        return self._batcher

    def request_body(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        return chat_request(self.spec.id, request)

    async def call(self, client: Any, request: Request, timeout: float) -> Any:
        body, options = self.request_body(request)
        # The client's generic POST keeps the SDK's auth, timeouts and errors but skips
        # its typed request transform and response models, which cost more CPU per call
        # than the HTTP exchange itself at a few hundred calls a second.
        sent = attempt_options(options, timeout)
        return await client.post("/chat/completions", body=body, options=sent, cast_to=object)

    def read(self, raw: Any) -> Reply:
        choice = _first_choice(raw)
        message = _field(choice, "message")
        finish = _field(choice, "finish_reason")
        refusal = _field(message, "refusal")
        if refusal:
            raise ProviderError(f"openai: refused: {refusal}")
        if finish == "content_filter":
            raise ProviderError("openai: the answer was withheld by the content filter (finish_reason content_filter)")
        text = _field(message, "content")
        if not isinstance(text, str) or not text:
            raise ProviderError(f"openai: empty answer (finish_reason {finish!r}) and no refusal")
        model = _field(raw, "model")
        served = model if isinstance(model, str) and model else None
        return Reply(text=text, model=served, metadata=_metadata(raw, finish), **_usage(raw))

    def map_error(self, exc: Exception) -> LLMOptError:
        if isinstance(exc, json.JSONDecodeError):
            return ProviderError(f"openai: malformed JSON in the response from {self.base_url}: {exc}")
        table = error_table()
        refused = failed_connection(exc) if type(exc).__name__ == "APITimeoutError" else None
        if refused is not None:
            return ProviderError("openai: " + _CONNECTION_TEMPLATE.format(**{**self._error_facts(exc), "cause": _named(refused)}))
        for cls in type(exc).__mro__:
            if cls in table:
                kind, template = table[cls]
                return kind("openai: " + template.format(**self._error_facts(exc)))
        return ProviderError(f"openai: {type(exc).__name__}: {exc}")

    def _error_facts(self, exc: Exception) -> dict[str, Any]:
        return {
            "status": getattr(exc, "status_code", None) or "no status",
            "server": _server_message(exc),
            "env": self.env_var,
            "model": self.spec.id,
            "base_url": self.base_url,
            "retries": _retries_text(retries_of(exc, self.max_retries)),
            "timeout": f"{self.timeout_s:g}",
            "cause": _cause(exc),
        }


class OpenAIProviderType(HostedProviderType):
    """``model: {provider: openai, id: gpt-4o-mini, base_url: ..., params: {...}}``."""

    name = "openai"
    env_var = "OPENAI_API_KEY"

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        problems = super().check(spec, base_dir)
        for key in _RESERVED_PARAMS:
            if key in spec.params:
                problems.append(f"model.params.{key} is set by llmopt and cannot be passed as a parameter")
        return problems

    def create(self, spec: ModelSpec, base_dir: Path) -> OpenAIProvider:
        return OpenAIProvider(spec, self)


def _field(data: Any, key: str) -> Any:
    """``data[key]`` when ``data`` is a JSON object, else None."""
    if type(data) is dict:  # what the SDK parses a body into: no abstract class check
        return data.get(key)
    return data.get(key) if isinstance(data, Mapping) else None


def _first_choice(raw: Any) -> Any:
    if isinstance(raw, (str, bytes)):
        shown = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        raise ProviderError(f"openai: the server did not answer with JSON: {shown[:200]!r}")
    choices = _field(raw, "choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise ProviderError("openai: malformed response: no choices in the chat completion")
    return choices[0]


def _usage(raw: Any) -> dict[str, int]:
    usage = _field(raw, "usage")
    return {
        "input_tokens": _int(_field(usage, "prompt_tokens")),
        "output_tokens": _int(_field(usage, "completion_tokens")),
        "cached_input_tokens": _int(_field(_field(usage, "prompt_tokens_details"), "cached_tokens")),
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _metadata(raw: Any, finish: Any) -> dict[str, Any]:
    found = {"system_fingerprint": _field(raw, "system_fingerprint"), "finish_reason": finish}
    return {key: value for key, value in found.items() if value is not None}


def _server_message(exc: Exception) -> str:
    """What the server said (the ``error.message`` of its JSON body), else the exception's text."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else None
    if isinstance(message, str) and message:
        return message
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return str(getattr(exc, "message", None) or exc or type(exc).__name__)


def _retries_text(retries: int) -> str:
    return f"{retries} retr{'y' if retries == 1 else 'ies'}"


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return _named(exc) if cause is None else _named(cause)


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

"""Hosted fine-tuning jobs through the official openai SDK: upload, create, follow.

The SDK client, the key lookup (``OPENAI_API_KEY``; a missing key names it), the
base URL (``OPENAI_BASE_URL`` when none is given), timeouts, retries, redaction and
the mapping of every SDK exception to llmopt's errors are the ``openai`` provider's
own; only "not found" is worded for files and jobs rather than models.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

from ..errors import FineTuneError, LLMOptError, ProviderUnavailable
from ..provider.openai import OpenAIProvider, OpenAIProviderType, _server_message
from ..spec import ModelSpec

__all__ = ["FineTuningAPI", "Job", "JobEvent", "OPENAI_HYPERPARAMETERS", "openai_hyperparameters"]

TERMINAL = ("succeeded", "failed", "cancelled")
#: The hyperparameters OpenAI's supervised fine-tuning takes ("auto" or a number).
OPENAI_HYPERPARAMETERS = {"n_epochs": int, "batch_size": int, "learning_rate_multiplier": float}
#: Spec spellings accepted for OpenAI's names (the same meaning only: a local
#: ``learning_rate`` is not OpenAI's multiplier).
_ALIASES = {"epochs": "n_epochs"}


@dataclass(frozen=True)
class JobEvent:
    """One message of a job's event log."""

    id: str
    created_at: int
    level: str
    message: str

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.created_at))
        return f"  {stamp} {self.level}: {self.message}"


@dataclass(frozen=True)
class Job:
    """A fine-tuning job as the server last described it."""

    id: str
    status: str
    model: str
    fine_tuned_model: str | None = None
    training_file: str | None = None
    trained_tokens: int | None = None
    error: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def summary(self) -> str:
        parts = [f"job {self.id}: {self.status}", f"base {self.model}"]
        if self.trained_tokens:
            parts.append(f"{self.trained_tokens} trained tokens")
        if self.fine_tuned_model:
            parts.append(f"model {self.fine_tuned_model}")
        if self.error:
            parts.append(f"error: {self.error}")
        return "; ".join(parts)


def openai_hyperparameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as OpenAI hyperparameters: aliases renamed, each "auto" or a positive
    number. Raises :class:`FineTuneError` naming every unknown key or bad value."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        name = _ALIASES.get(key, key)
        kind = OPENAI_HYPERPARAMETERS.get(name)
        if kind is None:
            known = ", ".join([*OPENAI_HYPERPARAMETERS, *_ALIASES])
            problems.append(f"unknown hyperparameter {key!r} for openai (known: {known})")
        elif value == "auto" or _positive(value, kind):
            out[name] = value
        else:
            problems.append(f"hyperparameter {key!r} must be 'auto' or a positive {kind.__name__}, got {value!r}")
    if problems:
        raise FineTuneError("; ".join(problems))
    return out


def _positive(value: Any, kind: type) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return False
    return kind is float or isinstance(value, int)


class _FineTuningProvider(OpenAIProvider):
    """The openai provider's client, key and error mapping, for files and jobs."""

    def map_error(self, exc: Exception) -> LLMOptError:
        if getattr(exc, "status_code", None) == 404:
            return ProviderUnavailable(f"openai: not found at {self.base_url} (404): {_server_message(exc)}")
        return super().map_error(exc)

    def mapped(self, exc: Exception) -> LLMOptError:
        """llmopt's error for ``exc``, with keys redacted."""
        return self._mapped(exc)


class FineTuningAPI:
    """The files and fine-tuning endpoints of OpenAI (or a compatible server)."""

    def __init__(
        self, base_url: str | None = None, *, model: str | None = None, timeout: float = 60.0, max_retries: int = 2
    ) -> None:
        spec = ModelSpec(
            provider="openai", id=model or "fine-tuning", base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self._provider = _FineTuningProvider(spec, OpenAIProviderType())

    @property
    def base_url(self) -> str:
        return self._provider.base_url

    @asynccontextmanager
    async def connect(self) -> AsyncIterator["Connection"]:
        """A connection whose SDK errors come out as llmopt errors (key read here)."""
        client = self._provider.make_client(self._provider.api_key())
        try:
            yield Connection(client, self._provider)
        finally:
            await client.close()


class Connection:
    """One SDK client; every call maps SDK exceptions at the boundary."""

    def __init__(self, client: Any, provider: _FineTuningProvider) -> None:
        self._client = client
        self._provider = provider

    async def upload(self, name: str, data: bytes) -> str:
        """Upload a training file (purpose ``fine-tune``); its file id."""
        found = await self._call(self._client.files.create(file=(name, data, "application/jsonl"), purpose="fine-tune"))
        return str(found.id)

    async def create(
        self, *, base: str, training_file: str, hyperparameters: Mapping[str, Any], suffix: str | None, seed: int | None = None
    ) -> Job:
        """Create a supervised fine-tuning job of ``base`` on ``training_file``."""
        method = {"type": "supervised", "supervised": {"hyperparameters": dict(hyperparameters)}}
        extra = {k: v for k, v in (("suffix", suffix), ("seed", seed)) if v is not None}
        jobs = self._client.fine_tuning.jobs
        found = await self._call(jobs.create(model=base, training_file=training_file, method=method, **extra))
        return _job(found)

    async def job(self, job_id: str) -> Job:
        return _job(await self._call(self._client.fine_tuning.jobs.retrieve(job_id)))

    async def events(self, job_id: str, limit: int = 50) -> list[JobEvent]:
        """The job's latest events, oldest first."""
        page = await self._call(self._client.fine_tuning.jobs.list_events(job_id, limit=limit))
        events = [JobEvent(str(e.id), int(e.created_at or 0), str(e.level or "info"), str(e.message or "")) for e in page.data]
        return sorted(events, key=lambda e: (e.created_at, e.id))

    async def _call(self, pending: Any) -> Any:
        try:
            return await pending
        except Exception as exc:  # mapped at the boundary
            raise self._provider.mapped(exc) from None


def _job(raw: Any) -> Job:
    if not getattr(raw, "id", None) or not getattr(raw, "status", None):
        raise FineTuneError(f"openai: malformed fine-tuning job in the response: {str(raw)[:200]!r}")
    error = getattr(raw, "error", None)
    message = getattr(error, "message", None) if error is not None else None
    hyper = getattr(raw, "hyperparameters", None)
    return Job(
        id=str(raw.id),
        status=str(raw.status),
        model=str(getattr(raw, "model", "") or ""),
        fine_tuned_model=getattr(raw, "fine_tuned_model", None) or None,
        training_file=getattr(raw, "training_file", None),
        trained_tokens=getattr(raw, "trained_tokens", None),
        error=_error_text(error, message),
        hyperparameters=hyper.model_dump(exclude_none=True) if hyper is not None and hasattr(hyper, "model_dump") else {},
    )


def _error_text(error: Any, message: Any) -> str | None:
    if error is None or not (message or getattr(error, "code", None)):
        return None
    code = getattr(error, "code", None)
    text = str(message or "no message")
    return f"{text} ({code})" if code else text


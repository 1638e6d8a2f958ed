"""The Provider protocol every model backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from ..dataset._case import Case
from ..spec._model import ModelSpec

Message = Mapping[str, str]


@dataclass(frozen=True)
class Request:
    """Everything a provider may need to answer one case once."""

    messages: Sequence[Message]
    prompt: str
    case: Case
    context: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    repeat: int = 0


@dataclass(frozen=True)
class Response:
    """A provider's answer with its usage and how long it took."""

    text: str
    latency_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    #: The model name the server reports (may differ from the id asked for).
    model: str | None = None
    cost_usd: float = 0.0
    #: True when the answer came from llmopt's response cache: latency, tokens and cost
    #: are then the original call's.
    cached: bool = False
    #: Input tokens the provider served from its own prompt cache (billed lower).
    cached_input_tokens: int = 0
    #: Provider-specific facts worth keeping (e.g. ``system_fingerprint``, stop reason).
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    """A ready-to-call model backend for one model spec."""

    #: Requests this provider accepts at once (the runner's bound).
    concurrency: int
    #: Whether responses may be cached (False for the user's own code by default).
    cacheable: bool
    # Optional: ``free = True`` when no call can cost money (a model on this machine);
    # a used-up budget then does not stop its calls. Anything else is budgeted.

    def identity(self) -> Mapping[str, Any]:
        """What identifies the model for the response cache (id, file hash, base URL)."""

    async def generate(self, request: Request) -> Response:
        """Answer one request; raise ProviderError for a failed case,
        ProviderUnavailable when nothing can work."""


class ProviderType(Protocol):
    """A named kind of provider, registered through ``llmopt_provider_types``."""

    name: str

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        """Problems with a model spec found without running anything (cheap)."""

    def create(self, spec: ModelSpec, base_dir: Path) -> Provider:
        """Build the provider for ``spec`` (heavy work may be deferred to first use)."""

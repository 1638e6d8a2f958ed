"""The Provider protocol every model backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from ..dataset._case import Case
    from ..spec._model import ModelSpec
    from ._batch import Batcher

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
    """A ready-to-call model backend for one model spec.

    ``concurrency``, ``cacheable``, ``identity`` and ``generate`` are required; the
    other members are optional, with the defaults of :class:`ProviderBase`.
    """

    #: Requests this provider accepts at once (the runner's bound).
    concurrency: int
    #: Whether responses may be cached (False for the user's own code by default).
    cacheable: bool
    #: True when no call can cost money (a model on this machine): a used-up budget
    #: does not stop its calls. Default False: every call is budgeted.
    free: bool
    #: True when the answer depends on more than the messages (the case's fields, the
    #: retrieved context): the cache key then includes them. Default False.
    cache_includes_case: bool

    def identity(self) -> Mapping[str, Any]:
        """What identifies the model for the response cache (id, file hash, base URL)."""

    async def generate(self, request: Request) -> Response:
        """Answer one request; raise ProviderError for a failed case,
        ProviderUnavailable when nothing can work."""

    def estimate_cost(self, request: Request) -> float:
        """The most the call may cost in USD, held against the budget before it is
        sent (default 0.0: unknown, only a used-up budget stops it)."""

    def served(self) -> Mapping[str, Any]:
        """How answers are produced (engine, precision, adapter), for the variant's
        identity (default: nothing)."""

    def secrets(self) -> Sequence[str]:
        """Values that must never leave the provider (its API key): redacted from every
        error message (default: none)."""

    async def aclose(self) -> None:
        """Release what the calls of the current event loop opened (default: nothing)."""

    def batcher(self) -> "Batcher | None":
        """The provider's batch API for this model (``--llmopt-batch``, ``model.batch``),
        or None when its requests cannot go in batches (default: None)."""


class ProviderBase:
    """The defaults of a provider's optional members; derive a provider from it."""

    concurrency: int = 1
    cacheable: bool = False
    free: bool = False
    cache_includes_case: bool = False

    def estimate_cost(self, request: Request) -> float:
        return 0.0

    def served(self) -> Mapping[str, Any]:
        return {}

    def secrets(self) -> Sequence[str]:
        return ()

    async def aclose(self) -> None:
        return None

    def batcher(self) -> "Batcher | None":
        return None


PROVIDER_OPTIONAL = ("free", "cache_includes_case", "estimate_cost", "served", "secrets", "aclose", "batcher")
PROVIDER_REQUIRED = ("concurrency", "cacheable", "identity", "generate")


def declared_provider(provider: Provider) -> Provider:
    """``provider`` with the defaults of the optional members it lacks."""
    from .._contracts import with_defaults

    return with_defaults(provider, ProviderBase, PROVIDER_OPTIONAL, PROVIDER_REQUIRED, "provider")


class ProviderType(Protocol):
    """A named kind of provider, registered through ``llmopt_provider_types``."""

    name: str

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        """Problems with a model spec found without running anything (cheap)."""

    def create(self, spec: ModelSpec, base_dir: Path) -> Provider:
        """Build the provider for ``spec`` (heavy work may be deferred to first use)."""

"""Embedding models for the ``embedding`` retriever: hosted (OpenAI's embeddings
endpoint, or any compatible server) and local (a GGUF model run by llama-cpp-python).

``embedding: {provider: openai, id: text-embedding-3-small, base_url: ..., dimensions: 256}``
calls ``client.embeddings.create`` through the official SDK's async client, built by
the same helper as the ``openai`` provider (key from ``OPENAI_API_KEY`` or
``options.api_key_env``, the spec's timeout and retries, the adaptive limiter, the
same error mapping and redaction). ``embedding: {provider: local}`` embeds offline
with the shipped SmolLM2 GGUF (or ``id: path/to/model.gguf``), mean-pooled.

Vectors come back L2-normalized, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from ..errors import ProviderError, ProviderUnavailable
from ..spec._model import ModelSpec
from ._gguf import default_model_path, file_sha256, is_default_alias
from ._pricing import cost_usd
from .openai import OpenAIProvider, OpenAIProviderType

__all__ = [
    "Embedded", "Embedder", "EmbeddingCalls", "EMBEDDING_PROVIDERS", "check_embedding", "create_embedder", "plain_identity",
]

#: The keys of ``retrieval.embedding``.
EMBEDDING_KEYS = (
    "provider", "id", "base_url", "dimensions", "batch_size", "timeout", "max_retries", "concurrency", "price", "options",
)
EMBEDDING_PROVIDERS = ("openai", "local")
DEFAULT_BATCH_SIZE = 64
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"


@dataclass(frozen=True)
class Embedded:
    """Unit vectors, one per text, and the input tokens the provider counted."""

    vectors: list[list[float]]
    input_tokens: int = 0
    #: What the call cost in USD (0 for a model on this machine or an unpriced one).
    cost_usd: float = 0.0


class Embedder(Protocol):
    """An embedding model ready to call. The engine's call gateway splits texts into
    batches of ``batch_size`` and budgets, counts and (for queries) caches each call."""

    #: Texts per call.
    batch_size: int
    #: True when no call can cost money (a model on this machine).
    free: bool

    def identity(self) -> Mapping[str, Any]:
        """What identifies the vectors (provider, model, base URL or file hash); no key."""

    async def embed(self, texts: Sequence[str]) -> Embedded:
        """Vectors of one batch of ``texts`` (ProviderError / ProviderAuthError when it fails)."""

    def secrets(self) -> Sequence[str]:
        """Values redacted from every error (the API key)."""

    async def aclose(self) -> None:
        """Release what a call opened (an SDK client)."""


class EmbeddingCalls(Protocol):
    """The engine's call gateway, as retrieval sees it."""

    async def embed(self, embedder: Embedder, texts: Sequence[str], what: str, *, cached: bool = False) -> Embedded:
        """Vectors of ``texts`` through the gateway (budgeted, counted; ``cached``: kept
        in the response cache)."""


def check_embedding(raw: Any, base_dir: Path = Path(".")) -> list[str]:
    """Problems with ``retrieval.embedding`` (cheap: nothing is imported or called)."""
    if raw is None:
        return ["retrieval.embedding is required by retriever 'embedding' ({provider: openai | local, id: ...})"]
    if not isinstance(raw, Mapping):
        return [f"retrieval.embedding must be a mapping {{provider, id, ...}}, got {raw!r}"]
    known = ", ".join(EMBEDDING_KEYS)
    problems = [f"retrieval.embedding: unknown key {key!r} (known: {known})" for key in raw if key not in EMBEDDING_KEYS]
    provider = raw.get("provider", "openai")
    if provider not in EMBEDDING_PROVIDERS:
        problems.append(f"retrieval.embedding.provider must be one of {', '.join(EMBEDDING_PROVIDERS)}, got {provider!r}")
    for key in ("id", "base_url"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            problems.append(f"retrieval.embedding.{key} must be a string, got {raw[key]!r}")
    for key in ("dimensions", "batch_size", "concurrency"):
        if raw.get(key) is not None and not (_is_int(raw[key]) and raw[key] >= 1):
            problems.append(f"retrieval.embedding.{key} must be a positive integer, got {raw[key]!r}")
    if raw.get("options") is not None and not isinstance(raw["options"], Mapping):
        problems.append(f"retrieval.embedding.options must be a mapping, got {raw['options']!r}")
    if provider == "openai" and not problems:
        problems += [p.replace("model.", "retrieval.embedding.") for p in OpenAIProviderType().check(_model_spec(raw), base_dir)]
    model_id = raw.get("id")
    if provider == "local" and isinstance(model_id, str) and not is_default_alias(model_id):
        path = Path(model_id) if Path(model_id).is_absolute() else Path(base_dir) / model_id
        if not path.is_file():
            problems.append(f"retrieval.embedding.id: no model file {model_id!r} (relative to the spec's folder)")
    return problems


def create_embedder(
    raw: Mapping[str, Any], base_dir: Path, local_models: "dict[Path, LocalEmbedder] | None" = None
) -> Embedder:
    """The embedder of a checked ``retrieval.embedding`` mapping. Local models are
    loaded once per file when the caller keeps them in ``local_models``."""
    if raw.get("provider", "openai") == "local":
        path = _local_path(raw.get("id"), base_dir)
        if local_models is None:
            return LocalEmbedder(path)
        return local_models.setdefault(path, LocalEmbedder(path))
    return OpenAIEmbedder(_model_spec(raw), OpenAIProviderType(), raw)


def _model_spec(raw: Mapping[str, Any]) -> ModelSpec:
    return ModelSpec(
        provider="openai",
        id=raw.get("id") or DEFAULT_OPENAI_MODEL,
        base_url=raw.get("base_url"),
        concurrency=raw.get("concurrency"),
        options=dict(raw.get("options") or {}),
        timeout=float(raw["timeout"]) if raw.get("timeout") is not None else None,
        max_retries=raw.get("max_retries"),
        price=_price(raw.get("price")),
    )


def _price(value: Any) -> Any:
    """``price: {input: X}`` (USD per million input tokens): embeddings have no output."""
    return {"output": 0.0, **value} if isinstance(value, Mapping) else value


class OpenAIEmbedder(OpenAIProvider):
    """Embeddings through the ``openai`` provider's client, limiter and error mapping."""

    def __init__(self, spec: ModelSpec, ptype: OpenAIProviderType, raw: Mapping[str, Any]) -> None:
        super().__init__(spec, ptype)
        self.dimensions: int | None = raw.get("dimensions")
        self.batch_size = int(raw.get("batch_size") or DEFAULT_BATCH_SIZE)

    def identity(self) -> Mapping[str, Any]:
        return {"provider": "openai", **super().identity(), "dimensions": self.dimensions}

    async def embed(self, texts: Sequence[str]) -> Embedded:
        if self._auth_error is not None:
            raise self._auth_error
        client = self._client_for_loop()
        extra = {"dimensions": self.dimensions} if self.dimensions else {}
        async with self.limiter:
            try:
                raw = await client.embeddings.create(model=self.spec.id, input=[t or " " for t in texts], **extra)
            except Exception as exc:  # mapped at the boundary, like chat calls
                raise self._mapped(exc) from None
        self.limiter.on_success()
        tokens = _tokens(raw)
        return Embedded(_read_vectors(raw, len(texts)), tokens, cost_usd(self.price, tokens, 0, 0))


def _read_vectors(raw: Any, count: int) -> list[list[float]]:
    data = getattr(raw, "data", None)
    if not isinstance(data, list) or len(data) != count:
        found = len(data) if isinstance(data, list) else "no"
        raise ProviderError(f"openai: malformed embeddings response: {found} vectors for {count} texts")
    ordered = sorted(data, key=lambda item: getattr(item, "index", 0))
    vectors = [list(getattr(item, "embedding", None) or []) for item in ordered]
    if any(not v or len(v) != len(vectors[0]) for v in vectors):
        raise ProviderError("openai: malformed embeddings response: empty or uneven vectors")
    return [_unit(v) for v in vectors]


def _tokens(raw: Any) -> int:
    value = getattr(getattr(raw, "usage", None), "prompt_tokens", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class LocalEmbedder:
    """Mean-pooled embeddings of a GGUF model, offline (llama.cpp is not thread-safe:
    calls are serialized)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._llama: Any = None
        self._lock = threading.Lock()
        self._digest: str | None = None
        self.batch_size = DEFAULT_BATCH_SIZE
        self.free = True

    def identity(self) -> Mapping[str, Any]:
        if self._digest is None:
            self._digest = file_sha256(self.path)
        return {"provider": "local", "sha256": self._digest, "pooling": "mean"}

    async def embed(self, texts: Sequence[str]) -> Embedded:
        return await asyncio.to_thread(self._embed, list(texts))

    def secrets(self) -> Sequence[str]:
        return ()

    async def aclose(self) -> None:
        return None

    def _embed(self, texts: list[str]) -> Embedded:
        with self._lock:
            llama = self._model()
            try:
                vectors = llama.embed([t or " " for t in texts], normalize=False, truncate=True)
            except Exception as exc:
                raise ProviderError(f"local embedding with {self.path.name} failed: {exc}") from exc
        return Embedded([_unit(list(v)) for v in vectors], 0)

    def _model(self) -> Any:
        if self._llama is None:
            try:
                import llama_cpp
            except ImportError:
                raise ProviderUnavailable("local embeddings need llama-cpp-python: pip install 'llmopt[local]'") from None
            try:
                self._llama = llama_cpp.Llama(
                    model_path=str(self.path), embedding=True, n_ctx=2048, verbose=False,
                    pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                )
            except Exception as exc:
                raise ProviderUnavailable(f"cannot load embedding model {self.path}: {exc}") from exc
        return self._llama


def _local_path(model_id: str | None, base_dir: Path) -> Path:
    if is_default_alias(model_id):
        return default_model_path()
    path = Path(str(model_id))
    path = path if path.is_absolute() else Path(base_dir) / path
    if not path.is_file():
        raise ProviderUnavailable(f"retrieval.embedding.id: no model file {path}")
    return path.resolve()


def _unit(vector: list[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm else vector


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def plain_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """An embedder's identity as JSON gives it back: what index files store and query
    vectors are cached under."""
    return dict(json.loads(json.dumps(dict(identity), sort_keys=True, default=str)))

"""The ``embedding`` retriever: cosine similarity of embeddings from a provider.

``retrieval: {retriever: embedding, embedding: {provider: openai, id:
text-embedding-3-small, base_url: ..., batch_size: 64}}`` or ``embedding: {provider:
local}`` (offline, the shipped GGUF model). Chunks are embedded in batches when the
index is built; the vectors are kept in the on-disk index cache (keyed by the
source's content, the chunking and the embedding settings, and checked against the
embedding model's identity on load). Query vectors are kept in the response cache
(keyed by the model's identity and the query text; never a key) once the runner
hands the index its cache.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence, TypeVar

from ..results import Usage
from ..spec._model import RetrievalSpec
from ._base import Chunk, Hit, Index, IndexState, RetrievalError
from ._settings import check_common, require_source

if TYPE_CHECKING:
    from ..budget import Account
    from ..cache import ResponseCache
    from ..provider.embedding import Embedder, LocalEmbedder

T = TypeVar("T")


class EmbeddingRetriever:
    """Ranks chunks by the cosine of their embedding with the query's. Keeps the
    local embedding models it loaded (one per file) for as long as it lives."""

    name = "embedding"

    def __init__(self) -> None:
        self._local: dict[Path, "LocalEmbedder"] = {}
        self._lock = threading.Lock()
        self._account: "Account | None" = None

    def use_account(self, account: "Account | None") -> None:
        """Count the embedding calls of the indexes made from now on in ``account``
        (and check them against its budget)."""
        self._account = account

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        from ..provider.embedding import check_embedding

        return [*require_source(spec), *check_common(spec, ("embedding",)), *check_embedding(spec.options.get("embedding"), base_dir)]

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        import numpy as np

        embedder = self._embedder(spec, base_dir)
        texts = [_text(chunk) for chunk in chunks]
        embedded = blocking(embedder, lambda: embedder.embed(texts))
        vectors = np.asarray(embedded.vectors, dtype=np.float32).reshape(len(chunks), -1)
        return EmbeddingIndex(chunks, vectors, embedder)

    def restore(
        self, state: IndexState, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path
    ) -> Index:
        embedder = self._embedder(spec, base_dir)
        vectors = state.arrays["vectors"]
        if dict(state.meta.get("embedder", {})) != _plain(embedder.identity()) or vectors.shape[0] != len(chunks):
            raise ValueError("the stored embeddings were made by another model or for other chunks")
        return EmbeddingIndex(chunks, vectors, embedder)

    def _embedder(self, spec: RetrievalSpec, base_dir: Path) -> "Embedder":
        from ..provider.embedding import create_embedder

        with self._lock:
            embedder = create_embedder(spec.options.get("embedding") or {}, base_dir, self._local)
            if hasattr(embedder, "account"):
                embedder.account = self._account
            return embedder


class EmbeddingIndex:
    """Unit vectors of the chunks; a query is embedded (or found in the cache) and
    compared by dot product. ``asearch`` awaits the embedding in the caller's loop."""

    def __init__(self, chunks: Sequence[Chunk], vectors: Any, embedder: "Embedder") -> None:
        self._chunks = tuple(chunks)
        self._vectors = vectors
        self._embedder = embedder
        self._cache: "ResponseCache | None" = None

    def use_cache(self, cache: "ResponseCache | None") -> None:
        """Keep query vectors in ``cache`` (the response cache)."""
        self._cache = cache

    def search(self, query: str, top_k: int) -> list[Hit]:
        return blocking(self._embedder, lambda: self.asearch(query, top_k))

    async def asearch(self, query: str, top_k: int) -> list[Hit]:
        import numpy as np

        if top_k < 1 or not self._chunks:
            return []
        vector = np.asarray(await self.query_vector(query), dtype=np.float32)
        if vector.shape[0] != self._vectors.shape[1]:
            raise RetrievalError(f"the query vector has {vector.shape[0]} dimensions, the index {self._vectors.shape[1]}")
        scores = self._vectors @ vector
        order = _best(scores, top_k)
        return [Hit(chunk=self._chunks[n], score=float(scores[n]), rank=rank) for rank, n in enumerate(order, start=1)]

    async def query_vector(self, query: str) -> list[float]:
        """The query's vector, from the response cache when it was embedded before."""
        from ..provider import Response

        key = self._cache.key({"embedding": _plain(self._embedder.identity()), "input": query}) if self._cache else None
        stored = self._cache.get(key) if self._cache is not None and key is not None else None
        if stored is not None:
            account = getattr(self._embedder, "account", None)
            if account is not None:
                account.add(Usage(cache_hits=1))
            return list(json.loads(stored.text))
        embedded = await self._embedder.embed([query])
        if self._cache is not None and key is not None:
            self._cache.put(key, Response(text=json.dumps(embedded.vectors[0]), input_tokens=embedded.input_tokens))
        return embedded.vectors[0]

    async def aclose(self) -> None:
        """Close the embedding client of the current event loop."""
        await self._embedder.aclose()

    def state(self) -> IndexState | None:
        return IndexState(arrays={"vectors": self._vectors}, meta={"embedder": _plain(self._embedder.identity())})


def _best(scores: Any, top_k: int) -> list[int]:
    """Positions of the ``top_k`` best scores, best first, ties in chunk order."""
    import numpy as np

    if top_k < len(scores):
        candidates = np.argpartition(-scores, top_k - 1)[:top_k]
    else:
        candidates = np.arange(len(scores))
    return sorted((int(n) for n in candidates), key=lambda n: (-float(scores[n]), n))


def blocking(embedder: "Embedder", factory: Callable[[], Awaitable[T]]) -> T:
    """Run an embedding coroutine from synchronous code, on a fresh event loop (in a
    worker thread when this thread already runs one), closing its client after."""

    async def main() -> T:
        try:
            return await factory()
        finally:
            await embedder.aclose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmopt-embed") as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def _text(chunk: Chunk) -> str:
    """What is embedded: the chunk's heading (when its text lacks it) and its text."""
    if chunk.title and chunk.title not in chunk.text:
        return f"{chunk.title}\n{chunk.text}"
    return chunk.text


def _plain(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The identity as JSON would give it back (what the index file stores)."""
    return dict(json.loads(json.dumps(dict(identity), sort_keys=True, default=str)))

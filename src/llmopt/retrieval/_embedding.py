"""The ``embedding`` retriever: cosine similarity of embeddings from a provider.

``retrieval: {retriever: embedding, embedding: {provider: openai, id:
text-embedding-3-small, base_url: ..., batch_size: 64}}`` or ``embedding: {provider:
local}`` (offline, the shipped GGUF model). Chunks are embedded in batches when the
index is built; the vectors are kept in the on-disk index cache (keyed by the
source's content, the chunking and the embedding settings, and checked against the
embedding model's identity on load). Every embedding call goes through the engine's
call gateway (handed over with ``use_calls``): budgeted and counted, and query vectors
kept in the response cache (keyed by the model's identity and the query text; never
a key).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, TypeVar

from ..spec._model import RetrievalSpec
from ._base import Chunk, Hit, Index, IndexBase, IndexState, RetrievalError, RetrieverBase
from ._settings import check_common, require_source

if TYPE_CHECKING:
    from ..provider.embedding import Embedder, EmbeddingCalls, LocalEmbedder

T = TypeVar("T")


class EmbeddingRetriever(RetrieverBase):
    """Ranks chunks by the cosine of their embedding with the query's. Keeps the
    local embedding models it loaded (one per file) for as long as it lives."""

    name = "embedding"

    def __init__(self) -> None:
        self._local: dict[Path, "LocalEmbedder"] = {}
        self._lock = threading.Lock()
        self._calls: "EmbeddingCalls | None" = None

    def use_calls(self, calls: "EmbeddingCalls | None") -> None:
        """Make the embedding calls of the indexes built from now on through ``calls``
        (the engine's gateway)."""
        self._calls = calls

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        from ..provider.embedding import check_embedding

        embedding = check_embedding(spec.options.get("embedding"), base_dir)
        return [*require_source(spec), *check_common(spec, ("embedding",)), *embedding]

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        import numpy as np

        embedder, calls = self._embedder(spec, base_dir), self._gateway()
        texts = [_text(chunk) for chunk in chunks]
        what = f"embedding {len(texts)} chunks of {spec.source} with {embedder.identity().get('model', 'the local model')}"
        embedded = blocking(embedder, lambda: calls.embed(embedder, texts, what))
        vectors = np.asarray(embedded.vectors, dtype=np.float32).reshape(len(chunks), -1)
        return EmbeddingIndex(chunks, vectors, embedder, calls)

    def restore(
        self, state: IndexState, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path
    ) -> Index:
        embedder = self._embedder(spec, base_dir)
        vectors = state.arrays["vectors"]
        from ..provider.embedding import plain_identity

        if dict(state.meta.get("embedder", {})) != plain_identity(embedder.identity()) or vectors.shape[0] != len(chunks):
            raise ValueError("the stored embeddings were made by another model or for other chunks")
        return EmbeddingIndex(chunks, vectors, embedder, self._gateway())

    def _gateway(self) -> "EmbeddingCalls":
        if self._calls is None:
            raise RetrievalError("embedding retrieval makes its calls through the engine: no call gateway was given")
        return self._calls

    def _embedder(self, spec: RetrievalSpec, base_dir: Path) -> "Embedder":
        from ..provider.embedding import create_embedder

        with self._lock:
            return create_embedder(spec.options.get("embedding") or {}, base_dir, self._local)


class EmbeddingIndex(IndexBase):
    """Unit vectors of the chunks; a query is embedded (or found in the cache) and
    compared by dot product. ``asearch`` awaits the embedding in the caller's loop."""

    def __init__(self, chunks: Sequence[Chunk], vectors: Any, embedder: "Embedder", calls: "EmbeddingCalls") -> None:
        self._chunks = tuple(chunks)
        self._vectors = vectors
        self._embedder = embedder
        self._calls = calls

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
        """The query's vector, through the gateway (from the response cache when it
        was embedded before)."""
        what = f"embedding the query {query[:40]!r} with {self._model_name()}"
        embedded = await self._calls.embed(self._embedder, [query], what, cached=True)
        return embedded.vectors[0]

    def _model_name(self) -> str:
        return str(self._embedder.identity().get("model") or "the local model")

    async def aclose(self) -> None:
        """Close the embedding client of the current event loop."""
        await self._embedder.aclose()

    def state(self) -> IndexState | None:
        from ..provider.embedding import plain_identity

        return IndexState(arrays={"vectors": self._vectors}, meta={"embedder": plain_identity(self._embedder.identity())})


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

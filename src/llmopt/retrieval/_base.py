"""What retrieval produces (chunks, hits) and the protocols retrievers implement."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from ..errors import LLMOptError
from ..spec._model import RetrievalSpec


class RetrievalError(LLMOptError):
    """Retrieval cannot run: invalid settings, an unknown retriever, an index that
    cannot be built, or a user retrieval function that fails or returns nonsense."""


@dataclass(frozen=True)
class Chunk:
    """A piece of one document: the unit that is indexed and retrieved.

    ``id`` is ``<doc_id>#<n>`` (1-based, in document order) and stays the same as long
    as the document and the chunk settings do. ``title`` is the Markdown heading of
    the chunk's section (or the document's own title when it has one).
    """

    id: str
    doc_id: str
    text: str
    title: str | None = None


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its score and 1-based rank."""

    chunk: Chunk
    score: float
    rank: int


@runtime_checkable
class Index(Protocol):
    """A ready index: answers queries with the best chunks.

    ``search`` is required; ``asearch`` and ``aclose`` are optional, with the
    defaults of :class:`IndexBase`.
    """

    def search(self, query: str, top_k: int) -> list[Hit]:
        """At most ``top_k`` hits, best first."""

    async def asearch(self, query: str, top_k: int) -> list[Hit]:
        """Like ``search``, awaited in the evaluation's event loop (an index whose
        queries call a model); default: ``search``."""

    async def aclose(self) -> None:
        """Release what the queries of the current event loop opened (default: nothing)."""


class IndexBase:
    """The defaults of an index's optional members; derive an index from it."""

    def search(self, query: str, top_k: int) -> list[Hit]:
        raise NotImplementedError

    async def asearch(self, query: str, top_k: int) -> list[Hit]:
        return self.search(query, top_k)

    async def aclose(self) -> None:
        return None


class RetrieverType(Protocol):
    """A named kind of retriever, registered through ``llmopt_retrievers``.

    ``name``, ``check`` and ``build`` are required; ``bind`` and ``use_calls`` are
    optional, with the defaults of :class:`RetrieverBase`.
    """

    name: str

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        """Problems with a retrieval spec found without reading documents (cheap)."""

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        """Build the index of ``chunks`` (raise RetrievalError when it cannot)."""

    def bind(self, retrievers: Mapping[str, "RetrieverType"]) -> None:
        """Receive every registered retriever once the registry is complete (the
        ``hybrid`` retriever fuses them); default: nothing."""

    def use_calls(self, calls: Any) -> None:
        """Receive the engine's call gateway (an ``EmbeddingCalls``) for the model
        calls its indexes make; default: nothing."""


class RetrieverBase:
    """The defaults of a retriever's optional members; derive a retriever from it."""

    def bind(self, retrievers: Mapping[str, "RetrieverType"]) -> None:
        return None

    def use_calls(self, calls: Any) -> None:
        return None


RETRIEVER_OPTIONAL = ("bind", "use_calls")
RETRIEVER_REQUIRED = ("name", "check", "build")
INDEX_OPTIONAL = ("asearch", "aclose")


def declared_index(index: Index) -> Index:
    """``index`` with the defaults of the optional members it lacks."""
    from .._contracts import with_defaults

    return with_defaults(index, IndexBase, INDEX_OPTIONAL, ("search",), "index")


def declared_retriever(retriever: RetrieverType) -> RetrieverType:
    """``retriever`` with the defaults of the optional members it lacks."""
    from .._contracts import with_defaults

    return with_defaults(retriever, RetrieverBase, RETRIEVER_OPTIONAL, RETRIEVER_REQUIRED, "retriever")


@dataclass(frozen=True)
class IndexState:
    """A built index as plain data, for the on-disk index cache.

    ``arrays`` maps names to numeric numpy arrays; ``meta`` is JSON-serializable.
    Nothing in it is pickled, so a stored index can be loaded without running code.
    """

    arrays: Mapping[str, Any]
    meta: Mapping[str, Any]


@runtime_checkable
class StorableIndex(Protocol):
    """An index that can describe itself as an :class:`IndexState` (optional)."""

    def state(self) -> IndexState | None:
        """The index as plain data, or None when this one cannot be stored."""


@runtime_checkable
class RestorableRetriever(Protocol):
    """A retriever that rebuilds its index from a stored state (optional).

    The session stores an index on disk only when its retriever has ``restore``
    and the index has ``state``; other retrievers are rebuilt in every process.
    """

    def restore(
        self, state: IndexState, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path
    ) -> Index:
        """The index ``state`` describes (any exception: the state is unusable)."""

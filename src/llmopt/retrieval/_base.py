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
    """A ready index: answers queries with the best chunks."""

    def search(self, query: str, top_k: int) -> list[Hit]:
        """At most ``top_k`` hits, best first."""


class RetrieverType(Protocol):
    """A named kind of retriever, registered through ``llmopt_retrievers``."""

    name: str

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        """Problems with a retrieval spec found without reading documents (cheap)."""

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        """Build the index of ``chunks`` (raise RetrievalError when it cannot)."""


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

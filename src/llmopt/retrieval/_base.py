"""What retrieval produces (chunks, hits) and the protocols retrievers implement."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

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

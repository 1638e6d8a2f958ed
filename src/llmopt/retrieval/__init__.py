"""Retrieval: sources, chunking, retrievers (TF-IDF, BM25, embeddings, hybrid, your own
function), index reuse in memory and on disk.

The retrieved text reaches a prompt template as ``{{ context }}`` (see
:func:`format_context`) and ``{{ documents }}`` (see :func:`template_variables`).
"""

from __future__ import annotations

from ._base import (
    Chunk,
    Hit,
    Index,
    IndexBase,
    IndexState,
    RestorableRetriever,
    RetrievalError,
    RetrieverBase,
    RetrieverType,
    StorableIndex,
)
from ._bm25 import BM25Retriever
from ._context import format_context, template_variables
from ._corpus import load_chunks
from ._embedding import EmbeddingIndex, EmbeddingRetriever
from ._hybrid import HybridRetriever
from ._python import PythonRetriever
from ._session import RetrievalSession
from ._settings import ChunkSettings, chunk_settings
from ._source import check_source
from ._store import IndexStore
from ._tfidf import TfidfRetriever

__all__ = [
    "BM25Retriever",
    "Chunk",
    "ChunkSettings",
    "EmbeddingIndex",
    "EmbeddingRetriever",
    "Hit",
    "HybridRetriever",
    "Index",
    "IndexBase",
    "IndexState",
    "IndexStore",
    "PythonRetriever",
    "RestorableRetriever",
    "RetrievalError",
    "RetrievalSession",
    "RetrieverBase",
    "RetrieverType",
    "StorableIndex",
    "TfidfRetriever",
    "builtin_retriever_types",
    "check_source",
    "chunk_settings",
    "format_context",
    "load_chunks",
    "template_variables",
]


def builtin_retriever_types() -> list[RetrieverType]:
    """The retrievers llmopt registers itself: ``tfidf``, ``bm25``, ``embedding``,
    ``python`` and ``hybrid`` (which fuses any of the others; a registry binds it to
    every registered retriever)."""
    members: list[RetrieverType] = [TfidfRetriever(), BM25Retriever(), EmbeddingRetriever(), PythonRetriever()]
    return [*members, HybridRetriever({member.name: member for member in members})]

"""Retrieval: sources, chunking, retrievers (TF-IDF, BM25, your own function), index reuse.

The retrieved text reaches a prompt template as ``{{ context }}`` (see
:func:`format_context`) and ``{{ documents }}`` (see :func:`template_variables`).
"""

from __future__ import annotations

from ._base import Chunk, Hit, Index, RetrievalError, RetrieverType
from ._bm25 import BM25Retriever
from ._context import format_context, template_variables
from ._corpus import load_chunks
from ._python import PythonRetriever
from ._session import RetrievalSession
from ._settings import ChunkSettings, chunk_settings
from ._source import check_source
from ._tfidf import TfidfRetriever

__all__ = [
    "BM25Retriever",
    "Chunk",
    "ChunkSettings",
    "Hit",
    "Index",
    "PythonRetriever",
    "RetrievalError",
    "RetrievalSession",
    "RetrieverType",
    "TfidfRetriever",
    "builtin_retriever_types",
    "check_source",
    "chunk_settings",
    "format_context",
    "load_chunks",
    "template_variables",
]


def builtin_retriever_types() -> list[RetrieverType]:
    """The retrievers llmopt registers itself: ``tfidf``, ``bm25`` and ``python``."""
    return [TfidfRetriever(), BM25Retriever(), PythonRetriever()]

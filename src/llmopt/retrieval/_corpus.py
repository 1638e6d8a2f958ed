"""From a retrieval spec to the chunks of its source."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from ..spec._model import RetrievalSpec
from ._base import Chunk, RetrievalError
from ._chunking import chunk_document
from ._documents import Document, check_unique, parse_file
from ._settings import ChunkSettings, check_chunk, chunk_settings
from ._source import SourceData, read_source


def load_chunks(spec: RetrievalSpec, base_dir: Path) -> list[Chunk]:
    """Every chunk of the source of ``spec``, in document order ([] without a source).

    Raises DatasetError for a missing or empty source or an invalid corpus row,
    RetrievalError for invalid chunk settings.
    """
    return chunk_corpus(read_source(spec, base_dir), checked_settings(spec))


def checked_settings(spec: RetrievalSpec) -> ChunkSettings:
    """The chunk settings of ``spec``; RetrievalError when they are invalid."""
    problems = check_chunk(spec.options.get("chunk"))
    if problems:
        raise RetrievalError("\n".join(problems))
    return chunk_settings(spec)


def chunk_corpus(source: SourceData, settings: ChunkSettings) -> list[Chunk]:
    """The chunks of already-read source files."""
    if not source.files:
        return []
    documents = _documents(source)
    chunks = [chunk for doc in documents for chunk in chunk_document(doc, settings)]
    if not chunks:
        raise DatasetError(
            f"retrieval.source {source.label} has no text to retrieve:"
            f" its {len(documents)} document(s) are empty"
        )
    return chunks


def _documents(source: SourceData) -> list[Document]:
    documents = [
        document
        for file, data in zip(source.files, source.contents, strict=True)
        for document in parse_file(file.path, file.doc_id, data)
    ]
    check_unique(documents)
    return documents

"""Cutting documents into chunks: by Markdown section first, then by size."""

from __future__ import annotations

from ._base import Chunk
from ._documents import Document
from ._sections import Section, split_sections
from ._settings import ChunkSettings
from ._splitting import split_text


def chunk_document(document: Document, settings: ChunkSettings) -> list[Chunk]:
    """The chunks of one document, numbered ``<doc_id>#1``, ``#2``... in order.

    A chunk never spans two sections; each chunk of a section starts with the
    section's heading line, and the heading's text is the chunk's title.
    """
    pieces: list[tuple[str, str | None]] = []
    for section in split_sections(document.text, document.markdown):
        title = section.title or document.title
        pieces += [(text, title) for text in _section_texts(section, settings)]
    return [
        Chunk(id=f"{document.id}#{number}", doc_id=document.id, text=text, title=title)
        for number, (text, title) in enumerate(pieces, start=1)
    ]


def _section_texts(section: Section, settings: ChunkSettings) -> list[str]:
    if section.heading is None:
        return split_text(section.body, settings.size, settings.overlap)
    # The heading is repeated in every chunk: the body gets what is left of
    # ``size`` (at least half of it, so a very long heading cannot stall the cut).
    size = max(settings.size - len(section.heading) - 1, settings.size // 2, 1)
    overlap = min(settings.overlap, size - 1)
    return [f"{section.heading}\n{body}" for body in split_text(section.body, size, overlap)]

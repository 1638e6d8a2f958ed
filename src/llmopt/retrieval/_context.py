"""What retrieval hands to a prompt template: ``context`` and ``documents``."""

from __future__ import annotations

from typing import Any, Sequence

from ._base import Hit


def format_context(hits: Sequence[Hit]) -> str:
    """The hits' texts, best first, each preceded by its chunk id and separated by a
    blank line: ``[refunds.md#2] text...``. Empty when nothing was retrieved."""
    return "\n\n".join(f"[{hit.chunk.id}] {hit.chunk.text}" for hit in hits)


def template_variables(hits: Sequence[Hit]) -> dict[str, Any]:
    """The template variables of retrieved hits.

    ``context`` is :func:`format_context`; ``documents`` lists one mapping per hit
    (``id``, ``doc_id``, ``title``, ``text``, ``score``, ``rank``) for templates that lay
    the documents out themselves (``{% for d in documents %}{{ d.text }}{% endfor %}``).
    """
    documents = [
        {
            "id": hit.chunk.id,
            "doc_id": hit.chunk.doc_id,
            "title": hit.chunk.title,
            "text": hit.chunk.text,
            "score": hit.score,
            "rank": hit.rank,
        }
        for hit in hits
    ]
    return {"context": format_context(hits), "documents": documents}

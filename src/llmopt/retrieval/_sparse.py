"""A search index over a sparse document-term matrix, shared by TF-IDF and BM25."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from ._base import Chunk, Hit, RetrievalError

if TYPE_CHECKING:
    import numpy as np
    from scipy.sparse import spmatrix

Encoder = Callable[[str], "spmatrix"]


class SparseIndex:
    """Scores every chunk by the dot product of its row with the encoded query."""

    def __init__(self, chunks: Sequence[Chunk], matrix: "spmatrix", encode: Encoder) -> None:
        self._chunks = tuple(chunks)
        self._matrix = matrix
        self._encode = encode

    def search(self, query: str, top_k: int) -> list[Hit]:
        if top_k < 1 or not query.strip():
            return []
        scores = (self._matrix @ self._encode(query).T).toarray().ravel()
        return top_hits(scores, self._chunks, top_k)


def top_hits(scores: "np.ndarray", chunks: Sequence[Chunk], top_k: int) -> list[Hit]:
    """The ``top_k`` best chunks by descending score, ties in chunk order, zeros dropped."""
    import numpy as np

    hits: list[Hit] = []
    for position in np.argsort(-scores, kind="stable")[:top_k]:
        score = float(scores[position])
        if score <= 0.0:
            break
        hits.append(Hit(chunk=chunks[position], score=score, rank=len(hits) + 1))
    return hits


def indexed_text(chunk: Chunk) -> str:
    """What is indexed for a chunk: its text, with its title when the text lacks it."""
    if chunk.title and chunk.title not in chunk.text:
        return f"{chunk.title}\n{chunk.text}"
    return chunk.text


def fit_matrix(retriever: str, vectorizer: Any, chunks: Sequence[Chunk]) -> "spmatrix":
    """The document-term matrix of ``chunks`` (RetrievalError when nothing is indexable)."""
    if not chunks:
        raise RetrievalError(f"retriever {retriever!r}: no chunks to index (empty source?)")
    try:
        return vectorizer.fit_transform([indexed_text(chunk) for chunk in chunks]).tocsr()
    except ValueError as exc:  # scikit-learn: "empty vocabulary"
        raise RetrievalError(
            f"retriever {retriever!r}: the documents have no indexable words"
            f" (only stop words or punctuation?): {exc}"
        ) from exc

"""A search index over a sparse term-document matrix, shared by TF-IDF and BM25."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ._base import Chunk, Hit, IndexBase, IndexState, RetrievalError
from ._encoding import QueryEncoder, vocabulary_of

if TYPE_CHECKING:
    import numpy as np
    from scipy.sparse import csr_matrix


class SparseIndex(IndexBase):
    """Scores chunks by the dot product of their term weights with the query's.

    ``postings`` is term-major (one row per vocabulary term, one column per chunk),
    so a query touches only the rows of its own terms. ``fingerprint`` names what
    the query analyzer depends on (e.g. the scikit-learn version): a stored index
    is only restored under the same fingerprint.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        postings: "csr_matrix",
        encoder: QueryEncoder,
        fingerprint: Mapping[str, Any],
    ) -> None:
        self._chunks = tuple(chunks)
        self._postings = postings
        self._encoder = encoder
        self._fingerprint = dict(fingerprint)

    def search(self, query: str, top_k: int) -> list[Hit]:
        if top_k < 1 or not query.strip():
            return []
        return top_hits(self.scores(query), self._chunks, top_k)

    def scores(self, query: str) -> "np.ndarray":
        """The score of every chunk for ``query``, in chunk order."""
        import numpy as np

        ids, weights = self._encoder.encode(query)
        if len(ids) == 0:
            return np.zeros(len(self._chunks))
        return np.asarray(self._postings[ids].T @ weights).ravel()

    def state(self) -> IndexState:
        postings = self._postings
        arrays: dict[str, Any] = {
            "data": postings.data,
            "indices": postings.indices,
            "indptr": postings.indptr,
        }
        if self._encoder.idf is not None:
            arrays["idf"] = self._encoder.idf
        meta = {"fingerprint": self._fingerprint, "terms": self._encoder.terms()}
        return IndexState(arrays=arrays, meta=meta)


def restore_sparse(
    state: IndexState, chunks: Sequence[Chunk], analyze: Any, fingerprint: Mapping[str, Any]
) -> SparseIndex:
    """The index a :meth:`SparseIndex.state` describes (ValueError when it is stale
    or inconsistent)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    if state.meta.get("fingerprint") != dict(fingerprint):
        raise ValueError("the stored index was made by another version")
    arrays, terms = state.arrays, state.meta["terms"]
    shape = (len(terms), len(chunks))
    postings = csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
    postings.check_format(full_check=True)
    idf = arrays.get("idf")
    if idf is not None and np.shape(idf) != (len(terms),):
        raise ValueError("the stored idf does not match the vocabulary")
    encoder = QueryEncoder(analyze, vocabulary_of(terms), idf)
    return SparseIndex(chunks, postings, encoder, fingerprint)


def sklearn_fingerprint() -> dict[str, str]:
    """What a scikit-learn analyzer's output depends on (its stop words, tokenizer)."""
    import sklearn

    return {"sklearn": sklearn.__version__}


def term_major(matrix: "csr_matrix") -> "csr_matrix":
    """A chunk-term matrix turned into the term-chunk postings :class:`SparseIndex` uses."""
    return matrix.T.tocsr()


def top_hits(scores: "np.ndarray", chunks: Sequence[Chunk], top_k: int) -> list[Hit]:
    """The ``top_k`` best chunks by descending score, ties in chunk order, zeros dropped."""
    import numpy as np

    candidates = np.flatnonzero(scores > 0.0)
    if len(candidates) > top_k:
        threshold = np.partition(scores[candidates], len(candidates) - top_k)[-top_k]
        candidates = candidates[scores[candidates] >= threshold]
    order = candidates[np.argsort(-scores[candidates], kind="stable")][:top_k]
    return [
        Hit(chunk=chunks[position], score=float(scores[position]), rank=rank)
        for rank, position in enumerate(order.tolist(), start=1)
    ]


def indexed_text(chunk: Chunk) -> str:
    """What is indexed for a chunk: its text, with its title when the text lacks it."""
    if chunk.title and chunk.title not in chunk.text:
        return f"{chunk.title}\n{chunk.text}"
    return chunk.text


def fit_matrix(retriever: str, vectorizer: Any, chunks: Sequence[Chunk]) -> "csr_matrix":
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

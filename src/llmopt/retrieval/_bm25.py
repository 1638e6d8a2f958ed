"""The ``bm25`` retriever: Okapi BM25 on scikit-learn's term counts.

Each chunk's row holds, per term, ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))``
with ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``; a query's score is the sum of the
rows' values over the distinct query terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..spec._model import RetrievalSpec
from ._base import Chunk, Index, IndexState, RetrieverBase
from ._encoding import QueryEncoder
from ._settings import check_common, is_number, require_source
from ._sparse import SparseIndex, fit_matrix, restore_sparse, sklearn_fingerprint, term_major

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

K1 = 1.5
B = 0.75


class BM25Retriever(RetrieverBase):
    """Okapi BM25 (k1 = 1.5, b = 0.75 unless the options ``k1`` and ``b`` say otherwise)."""

    name = "bm25"

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        problems = [*require_source(spec), *check_common(spec, ("k1", "b"))]
        k1, b = spec.options.get("k1", K1), spec.options.get("b", B)
        if not is_number(k1) or k1 < 0:
            problems.append(f"retrieval.k1 must be a number >= 0, got {k1!r}")
        if not is_number(b) or not 0 <= b <= 1:
            problems.append(f"retrieval.b must be a number between 0 and 1, got {b!r}")
        return problems

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        vectorizer = _vectorizer()
        counts = fit_matrix(self.name, vectorizer, chunks)
        k1, b = float(spec.options.get("k1", K1)), float(spec.options.get("b", B))
        postings = term_major(bm25_weights(counts, k1, b))
        encoder = QueryEncoder(vectorizer.build_analyzer(), vectorizer.vocabulary_)
        return SparseIndex(chunks, postings, encoder, sklearn_fingerprint())

    def restore(
        self, state: IndexState, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path
    ) -> Index:
        analyze = _vectorizer().build_analyzer()
        return restore_sparse(state, chunks, analyze, sklearn_fingerprint())


def bm25_weights(counts: "csr_matrix", k1: float, b: float) -> "csr_matrix":
    """The BM25 weight of every (chunk, term) pair of a CSR count matrix."""
    import numpy as np

    counts = counts.tocsr().astype(np.float64)
    n_docs = counts.shape[0]
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    average = lengths.mean() or 1.0
    doc_freq = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log1p((n_docs - doc_freq + 0.5) / (doc_freq + 0.5))
    rows = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
    tf = counts.data
    weights = counts.copy()
    norm = k1 * (1 - b + b * lengths[rows] / average)
    weights.data = idf[counts.indices] * tf * (k1 + 1) / (tf + norm)
    return weights


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(lowercase=True, stop_words="english")

"""The ``tfidf`` retriever: TF-IDF vectors (words and word pairs), cosine similarity."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..spec._model import RetrievalSpec
from ._base import Chunk, Index, IndexState, RetrieverBase
from ._encoding import QueryEncoder
from ._settings import check_common, require_source
from ._sparse import SparseIndex, fit_matrix, restore_sparse, sklearn_fingerprint, term_major


class TfidfRetriever(RetrieverBase):
    """Lowercased words and bigrams without English stop words, sublinear term
    frequency; rows are L2-normalized so the dot product is the cosine."""

    name = "tfidf"

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        return [*require_source(spec), *check_common(spec)]

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        vectorizer = _vectorizer()
        matrix = fit_matrix(self.name, vectorizer, chunks)
        encoder = QueryEncoder(vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_)
        return SparseIndex(chunks, term_major(matrix), encoder, sklearn_fingerprint())

    def restore(
        self, state: IndexState, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path
    ) -> Index:
        analyze = _vectorizer().build_analyzer()
        return restore_sparse(state, chunks, analyze, sklearn_fingerprint())


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        lowercase=True, stop_words="english", sublinear_tf=True, ngram_range=(1, 2)
    )

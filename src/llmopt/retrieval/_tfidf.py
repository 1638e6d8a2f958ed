"""The ``tfidf`` retriever: TF-IDF vectors (words and word pairs), cosine similarity."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..spec._model import RetrievalSpec
from ._base import Chunk, Index
from ._settings import check_common, require_source
from ._sparse import SparseIndex, fit_matrix

if TYPE_CHECKING:
    from scipy.sparse import spmatrix


class TfidfRetriever:
    """Lowercased words and bigrams without English stop words, sublinear term
    frequency; rows are L2-normalized so the dot product is the cosine."""

    name = "tfidf"

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        return [*require_source(spec), *check_common(spec)]

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(
            lowercase=True, stop_words="english", sublinear_tf=True, ngram_range=(1, 2)
        )
        matrix = fit_matrix(self.name, vectorizer, chunks)
        return SparseIndex(chunks, matrix, partial(_encode, vectorizer))


def _encode(vectorizer: Any, query: str) -> "spmatrix":
    return vectorizer.transform([query])

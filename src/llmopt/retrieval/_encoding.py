"""Turning a query into weighted term ids with the vocabulary of a sparse index."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np

Analyzer = Callable[[str], Sequence[str]]


class QueryEncoder:
    """Looks a query's terms up in an index vocabulary and weights them.

    With ``idf`` the weights are TF-IDF (sublinear term frequency, L2-normalized),
    as scikit-learn's ``TfidfVectorizer`` computes them; without it every distinct
    known term weighs 1 (what BM25 sums over).
    """

    def __init__(
        self, analyze: Analyzer, vocabulary: Mapping[str, int], idf: "np.ndarray | None" = None
    ) -> None:
        self._analyze = analyze
        self.vocabulary = vocabulary
        self.idf = idf

    def encode(self, query: str) -> tuple["np.ndarray", "np.ndarray"]:
        """The ids of the query's known terms and their weights (empty arrays when none)."""
        import numpy as np

        lookup = self.vocabulary.get
        counts = Counter(i for i in map(lookup, self._analyze(query)) if i is not None)
        ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        if self.idf is None:
            return ids, np.ones(len(ids))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        weights = (1.0 + np.log(tf)) * self.idf[ids]
        norm = float(np.sqrt(weights @ weights))
        return ids, weights / norm if norm > 0 else weights

    def terms(self) -> list[str]:
        """The vocabulary as a list, in term-id order."""
        import numpy as np

        ordered = np.empty(len(self.vocabulary), dtype=object)
        ordered[np.fromiter(self.vocabulary.values(), dtype=np.int64)] = list(self.vocabulary)
        return ordered.tolist()


def vocabulary_of(terms: Sequence[Any]) -> dict[str, int]:
    """The term -> id mapping of a term list (ValueError when it is not a list of strings)."""
    if not all(isinstance(term, str) for term in terms):
        raise ValueError("the stored vocabulary holds something else than strings")
    return {term: index for index, term in enumerate(terms)}

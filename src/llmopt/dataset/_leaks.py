"""Leakage between training and evaluation inputs (fine-tuning data, demonstrations): exact and near duplicates.

Exact: equal after normalization (Unicode NFKC, case folded, punctuation dropped,
whitespace collapsed). Near: cosine similarity of TF-IDF vectors over character
2-4-grams of the normalized texts at or above a threshold, which catches reworded
punctuation, typos and small edits that word-level matching misses.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

__all__ = ["Leak", "find_leaks", "normalize_text"]

_SPACES = re.compile(r"\s+")
#: Evaluation rows compared with the training matrix at once (bounds memory).
_BLOCK = 512


@dataclass(frozen=True)
class Leak:
    """A training input that equals (``exact``) or nearly equals (``near``) an
    evaluation input; ``similarity`` is 1.0 for exact leaks."""

    train_id: str
    eval_id: str
    kind: str
    similarity: float

    def __str__(self) -> str:
        return f"train {self.train_id!r} ~ eval {self.eval_id!r}: {self.kind} ({self.similarity:.3f})"


def normalize_text(text: str) -> str:
    """``text`` compared loosely: NFKC, case folded, punctuation as space, single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in folded)
    return _SPACES.sub(" ", kept).strip()


def find_leaks(
    train: Sequence[tuple[str, str]], evaluation: Sequence[tuple[str, str]], threshold: float = 0.9
) -> list[Leak]:
    """Every (training, evaluation) pair of ``(id, text)`` inputs that leaks.

    Exact duplicates come first, then near duplicates with TF-IDF cosine at or above
    ``threshold`` (0 < threshold <= 1), most similar first. Empty texts never match.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    train_norm = [normalize_text(text) for _, text in train]
    eval_norm = [normalize_text(text) for _, text in evaluation]
    exact = _exact_pairs(train_norm, eval_norm)
    near = [p for p in _near_pairs(train_norm, eval_norm, threshold) if (p[0], p[1]) not in exact]
    leaks = [Leak(train[t][0], evaluation[e][0], "exact", 1.0) for t, e in sorted(exact, key=lambda p: (p[1], p[0]))]
    near.sort(key=lambda p: (-p[2], p[1], p[0]))
    return leaks + [Leak(train[t][0], evaluation[e][0], "near", round(s, 4)) for t, e, s in near]


def _exact_pairs(train: Sequence[str], evaluation: Sequence[str]) -> set[tuple[int, int]]:
    by_text: dict[str, list[int]] = {}
    for index, text in enumerate(train):
        if text:
            by_text.setdefault(text, []).append(index)
    return {(t, e) for e, text in enumerate(evaluation) if text for t in by_text.get(text, ())}


def _near_pairs(train: Sequence[str], evaluation: Sequence[str], threshold: float) -> list[tuple[int, int, float]]:
    """(train index, eval index, cosine) of every pair at or above ``threshold``."""
    vectors = _vectors([*train, *evaluation])
    if vectors is None:
        return []
    train_t, eval_m = vectors[: len(train)].T.tocsr(), vectors[len(train) :]
    found: list[tuple[int, int, float]] = []
    for start in range(0, len(evaluation), _BLOCK):
        block = (eval_m[start : start + _BLOCK] @ train_t).toarray()
        for e, t in zip(*(block >= threshold - 1e-9).nonzero(), strict=True):
            if train[t] and evaluation[start + e]:
                found.append((int(t), int(start + e), min(float(block[e, t]), 1.0)))
    return found


def _vectors(texts: Sequence[str]) -> "csr_matrix | None":
    """L2-normalized TF-IDF rows over character 2-4-grams; None when nothing to compare."""
    import numpy
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not any(texts):
        return None
    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, lowercase=False, dtype=numpy.float32
    )
    try:
        return vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # no n-gram at all (only very short texts)
        return None

"""Text normalization shared by the answer and label metrics."""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache
from typing import Sequence

_ARTICLES = re.compile(r"\b(?:a|an|the)\b", re.IGNORECASE)
#: Deletes ASCII punctuation (every ASCII character that :func:`is_punctuation` holds).
_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)


def is_punctuation(char: str) -> bool:
    """True for ASCII punctuation and any Unicode punctuation (curly quotes, ¿, …)."""
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def normalize_answer(text: str, *, lowercase: bool = True) -> str:
    """Normalize an answer for comparison, in the SQuAD manner.

    Lowercases (unless ``lowercase`` is False), removes punctuation, drops the articles
    *a*, *an* and *the*, and collapses runs of whitespace into single spaces.
    """
    if lowercase:
        text = text.lower()
    text = _without_punctuation(text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _without_punctuation(text: str) -> str:
    """``text`` without the characters :func:`is_punctuation` holds: one table lookup
    a character for ASCII text, a category lookup only for the others."""
    text = text.translate(_ASCII_PUNCTUATION)
    if text.isascii():
        return text
    return "".join(char for char in text if char.isascii() or not unicodedata.category(char).startswith("P"))


def answer_tokens(text: str) -> list[str]:
    """The tokens of ``text`` after :func:`normalize_answer`."""
    return normalize_answer(text).split()


def strip_label(text: str) -> str:
    """Remove whitespace, quotes and punctuation around ``text`` (not inside it)."""
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_edge(char: str) -> bool:
    return char.isspace() or is_punctuation(char)


def normalize_label(text: str) -> str:
    """A class label for comparison: stripped, lowercased, single-spaced."""
    return " ".join(strip_label(text).lower().split())


def extract_label(output: str, labels: Sequence[str] | None = None) -> str:
    """The normalized label a model's ``output`` predicts.

    With ``labels``, the output maps to the label found earliest in it as a whole word
    (case-insensitive; the longer label wins a tie), so ``"I think it's Positive."``
    gives ``"positive"``. Without labels, or when none is found, the output itself
    (see :func:`normalize_label`) is the prediction.
    """
    return _extract(output, tuple(labels or ()))


@lru_cache(maxsize=4096)
def _extract(output: str, labels: tuple[str, ...]) -> str:
    """Memoized: intervals aggregate the same outputs many times."""
    found = _first_label(output, labels)
    return normalize_label(found if found is not None else output)


def _first_label(output: str, labels: Sequence[str]) -> str | None:
    best: tuple[int, int] | None = None
    chosen: str | None = None
    for label in labels:
        words = label.split()
        if not words:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)"
        match = re.search(pattern, output, re.IGNORECASE)
        if match and (best is None or (match.start(), -len(match.group())) < best):
            best, chosen = (match.start(), -len(match.group())), label
    return chosen

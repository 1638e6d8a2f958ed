"""Cutting long text into overlapping windows at natural boundaries.

A window ends at the last paragraph break in its second half, else at the last
sentence end or line break, else at the last whitespace, else exactly at ``size``.
The next window starts at most ``overlap`` characters before the end: at the first
sentence start in that stretch, else at the first word start, else mid-word (text
without spaces).
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)|\n")
_WHITESPACE = re.compile(r"\s+")


def split_text(text: str, size: int, overlap: int) -> list[str]:
    """``text`` in pieces of at most ``size`` characters, each repeating about
    ``overlap`` characters of the previous one. Deterministic."""
    text = text.strip()
    pieces: list[str] = []
    start = 0
    while len(text) - start > size:
        end = _window_end(text, start, start + size)
        pieces.append(text[start:end].strip())
        start = _next_start(text, start, end, overlap)
    pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


def _window_end(text: str, start: int, limit: int) -> int:
    low = start + max(1, (limit - start) // 2)
    paragraph = text.rfind("\n\n", low, limit)
    if paragraph != -1:
        return paragraph
    sentence = _last_sentence_end(text, low, limit)
    if sentence is not None:
        return sentence
    for position in range(limit, low - 1, -1):
        if text[position].isspace():
            return position
    return limit


def _last_sentence_end(text: str, low: int, limit: int) -> int | None:
    end = None
    for match in _SENTENCE_END.finditer(text, low, min(len(text), limit + 1)):
        position = match.start() if match.group(0) == "\n" else match.end()
        if low <= position <= limit:
            end = position
    return end


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    position = end
    if overlap > 0:
        position = _overlap_start(text, start + 1, max(end - overlap, start + 1), end)
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _overlap_start(text: str, low: int, position: int, end: int) -> int:
    """The first sentence start from ``position`` on (before ``end``), else the first
    word start, else ``position`` itself (text without spaces). Never before ``low``."""
    # Look two characters back so a sentence ending just before ``position`` counts.
    sentence = _SENTENCE_END.search(text, max(position - 2, low), end)
    if sentence is not None and sentence.end() < end:
        return sentence.end()
    if text[position - 1].isspace():
        return position
    gap = _WHITESPACE.search(text, position, end)
    return gap.end() if gap else position

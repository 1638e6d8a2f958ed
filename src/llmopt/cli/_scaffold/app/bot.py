"""A stand-in for your application: answers with the context sentence that shares the
most words with the question. Replace it with your own pipeline (llmopt calls it with
whichever of prompt, messages, case, context and params its signature names)."""

from __future__ import annotations

import re

UNKNOWN = "I don't know; please contact support."


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def answer(case: dict[str, object], context: str | None) -> str:
    if not context:
        return UNKNOWN
    question = _words(str(case.get("question", "")))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", context) if s.strip() and not s.startswith("#")]
    best = max(sentences, key=lambda s: len(question & _words(s)), default="")
    return best if question & _words(best) else UNKNOWN

"""The assertion a promptfoo CSV ``__expected`` cell stands for."""

from __future__ import annotations

import re
from typing import Any

_TYPED = re.compile(
    r"^(?P<type>(?:not-)?(?:similar|equals|contains-all|contains-any|icontains-all|icontains-any|starts-with"
    r"|is-json|contains-json|regex|icontains|contains|llm-rubric|model-graded-closedqa|latency|cost|python"
    r"|javascript|levenshtein|rouge-n|bleu|perplexity|classifier|moderation|is-valid-openai-tools-call"
    r"|is-valid-openai-function-call|answer-relevance|context-faithfulness|context-recall|context-relevance"
    r"|factuality|select-best|webhook|is-xml|contains-xml|is-sql|contains-sql|is-html|contains-html))"
    r"(?:\((?P<threshold>\d+(?:\.\d+)?)\))?(?::(?P<value>[\s\S]*))?$"
)
_PREFIXES = (("fn:", "javascript"), ("eval:", "javascript"), ("grade:", "llm-rubric"), ("python:", "python"))


def assertion_from_string(text: str) -> dict[str, Any]:
    """``contains:Paris`` -> ``{type: contains, value: Paris}``; plain text is ``equals``."""
    for prefix, kind in _PREFIXES:
        if text.startswith(prefix):
            return {"type": kind, "value": text[len(prefix):].strip()}
    match = _TYPED.match(text)
    if match is None:
        return {"type": "equals", "value": text}
    found: dict[str, Any] = {"type": match.group("type")}
    value = match.group("value")
    if value is not None:
        value = value.strip()
        found["value"] = [v.strip() for v in value.split(",")] if found["type"].endswith(("-any", "-all")) else value
    if match.group("threshold"):
        found["threshold"] = float(match.group("threshold"))
    return found

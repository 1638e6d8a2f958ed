"""Friendly "did you mean" texts for misspelt names."""

from __future__ import annotations

import difflib
from typing import Iterable


def close_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` when one is close enough, else None."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_key(key: str, known: Iterable[str]) -> str:
    """``unknown key 'datset' (did you mean 'dataset'?)``, or the valid keys listed."""
    names = sorted(known)
    match = close_match(key, names)
    if match is not None:
        return f"unknown key '{key}' (did you mean '{match}'?)"
    return f"unknown key '{key}' (valid keys: {', '.join(names)})"


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """``unknown variant 'bsaeline' (did you mean 'baseline'? known: baseline, rag)``."""
    names = list(known)
    listed = ", ".join(names) if names else "none"
    match = close_match(name, names)
    hint = f"did you mean '{match}'? " if match is not None else ""
    return f"unknown {kind} '{name}' ({hint}known: {listed})"

"""The options every retriever shares: chunk settings, ``query``, ``top_k``, unknown keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..spec._model import RetrievalSpec

#: Option keys every retriever accepts (the retriever adds its own).
COMMON_OPTIONS = ("chunk", "query")
DEFAULT_SIZE = 800
DEFAULT_OVERLAP = 100


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut: at most ``size`` characters, ``overlap`` repeated."""

    size: int = DEFAULT_SIZE
    overlap: int = DEFAULT_OVERLAP


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def chunk_settings(spec: RetrievalSpec) -> ChunkSettings:
    """The chunk settings of ``spec`` with defaults filled in (assumes they were checked)."""
    raw = spec.options.get("chunk") or {}
    return ChunkSettings(
        size=raw.get("size", DEFAULT_SIZE), overlap=raw.get("overlap", DEFAULT_OVERLAP)
    )


def check_chunk(raw: Any) -> list[str]:
    """Problems with the ``chunk`` option: a mapping of ``size`` and ``overlap``."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [f"retrieval.chunk must be a mapping {{size, overlap}}, got {raw!r}"]
    problems = [
        f"retrieval.chunk: unknown key {key!r} (known: overlap, size)"
        for key in raw
        if key not in ("size", "overlap")
    ]
    size, overlap = raw.get("size", DEFAULT_SIZE), raw.get("overlap", DEFAULT_OVERLAP)
    if not is_int(size) or size < 1:
        problems.append(f"retrieval.chunk.size must be a positive integer, got {size!r}")
    elif not is_int(overlap) or not 0 <= overlap < size:
        problems.append(
            f"retrieval.chunk.overlap must be an integer with 0 <= overlap < size ({size}),"
            f" got {overlap!r}"
        )
    return problems


def check_common(spec: RetrievalSpec, own_options: Iterable[str] = ()) -> list[str]:
    """Problems shared by every retriever: ``top_k``, ``chunk``, ``query``, unknown keys."""
    problems: list[str] = []
    if not is_int(spec.top_k) or spec.top_k < 1:
        problems.append(f"retrieval.top_k must be a positive integer, got {spec.top_k!r}")
    problems += check_chunk(spec.options.get("chunk"))
    query = spec.options.get("query")
    if query is not None and not isinstance(query, str):
        problems.append(f"retrieval.query must be a string, got {query!r}")
    known = sorted({*COMMON_OPTIONS, *own_options})
    problems += [
        f"retrieval: unknown option {key!r} for retriever {spec.retriever!r}"
        f" (known: {', '.join(known)})"
        for key in spec.options
        if key not in known
    ]
    return problems


def require_source(spec: RetrievalSpec) -> list[str]:
    """The problem of a retriever that indexes documents but was given no source."""
    if spec.source is None:
        return [f"retrieval.source is required by retriever {spec.retriever!r}"]
    return []

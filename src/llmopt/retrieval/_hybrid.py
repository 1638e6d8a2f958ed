"""The ``hybrid`` retriever: reciprocal rank fusion (RRF) of other retrievers.

``options: {retrievers: [tfidf, bm25], k: 60}``. Every member indexes the same
chunks; a query asks each member for its best candidates and a chunk's fused score
is the sum, over the members that found it, of ``1 / (k + rank)``. A member is a
retriever name or a mapping ``{retriever: <name>, <its options>...}``, e.g.
``{retriever: bm25, k1: 1.2}``, ``{retriever: embedding, embedding: {provider: local}}``
or ``{retriever: python, function: "mine.py:search"}``. Any registered retriever can be
a member: the registry binds the hybrid to all of them (see :meth:`HybridRetriever.bind`).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..spec._model import RetrievalSpec
from ._base import (
    Chunk,
    Hit,
    Index,
    IndexBase,
    IndexState,
    RestorableRetriever,
    RetrieverBase,
    RetrieverType,
    StorableIndex,
    declared_index,
)
from ._settings import check_common, is_number

DEFAULT_MEMBERS = ("tfidf", "bm25")
DEFAULT_K = 60
#: How many candidates each member contributes at least (more when top_k is larger).
CANDIDATES = 50


@dataclass(frozen=True)
class Member:
    """One fused retriever with the spec it is built from."""

    retriever: RetrieverType
    spec: RetrievalSpec


class HybridRetriever(RetrieverBase):
    """Fuses the rankings of ``members`` (retriever types by name) with RRF."""

    name = "hybrid"

    def __init__(self, members: Mapping[str, RetrieverType]) -> None:
        self.bind(members)

    def bind(self, retrievers: Mapping[str, RetrieverType]) -> None:
        """Fuse from ``retrievers`` (a registry calls this with every registered one)."""
        self._members = {
            name: r for name, r in retrievers.items() if name != self.name and not isinstance(r, HybridRetriever)
        }

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        problems = check_common(spec, ("retrievers", "k"))
        k = spec.options.get("k", DEFAULT_K)
        if not is_number(k) or k < 0:
            problems.append(f"retrieval.k must be a number >= 0, got {k!r}")
        entries = spec.options.get("retrievers", list(DEFAULT_MEMBERS))
        if not isinstance(entries, list) or not entries:
            wanted = "a non-empty list of retriever names"
            return [*problems, f"retrieval.retrievers must be {wanted}, got {entries!r}"]
        found = [self._check_entry(entry, n, spec, base_dir) for n, entry in enumerate(entries)]
        problems += [problem for member in found for problem in member if problem is not None]
        needy = [repr(_name(entry)) for entry, member in zip(entries, found, strict=True) if None in member]
        if needy:
            problems.append(
                f"retrieval.source is required by retriever 'hybrid' (for {', '.join(needy)})"
            )
        return problems

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        members = self._resolve(spec)
        indexes = [(m.spec.retriever, m.retriever.build(chunks, m.spec, base_dir)) for m in members]
        return HybridIndex(chunks, indexes, _k(spec))

    def restore(
        self, state: IndexState, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path
    ) -> Index:
        members, parts = self._resolve(spec), state.meta["members"]
        if len(parts) != len(members):
            raise ValueError("the stored hybrid index has other members")
        indexes = []
        for position, (member, part) in enumerate(zip(members, parts, strict=True)):
            if part["retriever"] != member.spec.retriever:
                raise ValueError("the stored hybrid index has other members")
            if not isinstance(member.retriever, RestorableRetriever):
                raise ValueError(f"retriever {member.spec.retriever!r} cannot be restored")
            sub = IndexState(_arrays_of(state, position), part["meta"])
            index = member.retriever.restore(sub, chunks, member.spec, base_dir)
            indexes.append((member.spec.retriever, index))
        return HybridIndex(chunks, indexes, _k(spec))

    def _check_entry(
        self, entry: Any, position: int, spec: RetrievalSpec, base_dir: Path
    ) -> list[str | None]:
        """The problems of one member entry; None stands for "needs a source"."""
        where = f"retrieval.retrievers[{position}]"
        name = _name(entry)
        if not isinstance(name, str):
            wanted = "a retriever name or a mapping {retriever: <name>, <options>...}"
            return [f"{where} must be {wanted}, got {entry!r}"]
        if name == self.name:
            return [f"{where}: 'hybrid' cannot fuse itself (name the retrievers to fuse)"]
        if name not in self._members:
            return [f"{where}: {_unknown(name, self._members)}"]
        member = self._member(entry, spec)
        found = member.retriever.check(member.spec, base_dir)
        return [None if _about_source(p) else _relocate(p, where) for p in found]

    def _resolve(self, spec: RetrievalSpec) -> list[Member]:
        entries = spec.options.get("retrievers", list(DEFAULT_MEMBERS))
        return [self._member(entry, spec) for entry in entries]

    def _member(self, entry: Any, spec: RetrievalSpec) -> Member:
        options = dict(entry) if isinstance(entry, Mapping) else {"retriever": entry}
        name = options.pop("retriever")
        top_k = max(spec.top_k, CANDIDATES) if isinstance(spec.top_k, int) else CANDIDATES
        member_spec = RetrievalSpec(spec.source, retriever=name, top_k=top_k, options=options)
        return Member(self._members[name], member_spec)


class HybridIndex(IndexBase):
    """Reciprocal rank fusion of member indexes built on the same chunks."""

    def __init__(
        self, chunks: Sequence[Chunk], members: Sequence[tuple[str, Index]], k: float
    ) -> None:
        self._members = tuple((name, declared_index(index)) for name, index in members)
        self._k = float(k)
        self._order = {chunk.id: position for position, chunk in enumerate(chunks)}

    def search(self, query: str, top_k: int) -> list[Hit]:
        if top_k < 1:
            return []
        depth = max(top_k, CANDIDATES)
        return self._fused([member.search(query, depth) for _, member in self._members], top_k)

    async def asearch(self, query: str, top_k: int) -> list[Hit]:
        """Like :meth:`search`, awaiting the members that search asynchronously
        (embeddings) in the caller's event loop."""
        if top_k < 1:
            return []
        depth = max(top_k, CANDIDATES)
        found = [await member.asearch(query, depth) for _, member in self._members]
        return self._fused(found, top_k)

    async def aclose(self) -> None:
        for _, member in self._members:
            await member.aclose()

    def _fused(self, rankings: Sequence[Sequence[Hit]], top_k: int) -> list[Hit]:
        shares: dict[str, list[float]] = {}
        found: dict[str, Chunk] = {}
        for ranking in rankings:
            for hit in ranking:
                shares.setdefault(hit.chunk.id, []).append(1.0 / (self._k + hit.rank))
                found.setdefault(hit.chunk.id, hit.chunk)
        return self._ranked(shares, found, top_k)

    def _ranked(
        self, shares: dict[str, list[float]], found: dict[str, Chunk], top_k: int
    ) -> list[Hit]:
        """Best fused score first; ties in chunk order (unknown chunks after, as found)."""
        late = len(self._order)
        scores = {chunk_id: math.fsum(parts) for chunk_id, parts in shares.items()}
        arrival = {chunk_id: n for n, chunk_id in enumerate(found)}
        ordered = sorted(
            scores, key=lambda c: (-scores[c], self._order.get(c, late), arrival[c])
        )[:top_k]
        return [
            Hit(chunk=found[chunk_id], score=scores[chunk_id], rank=rank)
            for rank, chunk_id in enumerate(ordered, start=1)
        ]

    def state(self) -> IndexState | None:
        """The members' states side by side; None when one of them cannot be stored."""
        arrays: dict[str, Any] = {}
        parts = []
        for position, (name, member) in enumerate(self._members):
            state = member.state() if isinstance(member, StorableIndex) else None
            if state is None:
                return None
            arrays.update({f"{position}.{name}": value for name, value in state.arrays.items()})
            parts.append({"retriever": name, "meta": state.meta})
        return IndexState(arrays=arrays, meta={"members": parts})


def _k(spec: RetrievalSpec) -> float:
    return float(spec.options.get("k", DEFAULT_K))


def _arrays_of(state: IndexState, position: int) -> dict[str, Any]:
    prefix = f"{position}."
    return {
        name[len(prefix):]: value for name, value in state.arrays.items() if name.startswith(prefix)
    }


def _unknown(name: str, known: Mapping[str, Any]) -> str:
    """``unknown retriever 'bm52' (did you mean 'bm25'? known: bm25, python, tfidf)``."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown retriever {name!r} ({hint}known: {', '.join(names) or 'none'})"


def _relocate(problem: str, where: str) -> str:
    """A member's problem (``retrieval.k1 must...``) placed under its list entry."""
    for prefix in ("retrieval.", "retrieval:"):
        if problem.startswith(prefix):
            return where + problem[len("retrieval"):]
    return f"{where}: {problem}"


def _about_source(problem: str) -> bool:
    """A member's missing-source problem (reported once, by the hybrid itself)."""
    return problem.startswith("retrieval.source is required")


def _name(entry: Any) -> Any:
    return entry.get("retriever") if isinstance(entry, Mapping) else entry

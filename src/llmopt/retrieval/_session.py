"""Building each retrieval index once per process, and once per source on disk."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..spec._model import RetrievalSpec
from ._base import (
    Chunk,
    Index,
    RestorableRetriever,
    RetrievalError,
    RetrieverType,
    StorableIndex,
    declared_index,
    declared_retriever,
)
from ._corpus import checked_settings, chunk_corpus
from ._settings import COMMON_OPTIONS, ChunkSettings
from ._source import check_source, read_source
from ._store import IndexStore


class _Slot:
    """One index being built or built; its lock makes other askers wait for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index: Index | None = None
        self.chunks: Sequence[Chunk] = ()


class RetrievalSession:
    """Indexes by (source content, chunk settings, retriever, options), built once.

    Thread-safe: concurrent requests for the same index wait for one build;
    different indexes build in parallel. The source is read (and hashed) on every
    call, so ask once per variant rather than once per case.

    With ``cache_dir``, indexes of retrievers that can be stored (``tfidf``,
    ``bm25``, ``hybrid`` of those) are also kept on disk there and loaded by later
    sessions and other processes while the source is unchanged. ``builds`` and
    ``loads`` count the indexes this session built and loaded from disk.
    """

    def __init__(
        self,
        registry_retrievers: Mapping[str, RetrieverType],
        cache_dir: Path | None = None,
        calls: Any = None,
    ) -> None:
        self._retrievers = {name: declared_retriever(r) for name, r in registry_retrievers.items()}
        #: The engine's call gateway, for the retrievers whose indexes call a model.
        for retriever in self._retrievers.values() if calls is not None else ():
            retriever.use_calls(calls)
        self._store = IndexStore(Path(cache_dir)) if cache_dir is not None else None
        self._guard = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self.builds = 0
        self.loads = 0

    def index_for(self, spec: RetrievalSpec, base_dir: Path) -> Index:
        """The index of ``spec`` (RetrievalError / DatasetError when it cannot be built)."""
        retriever = self._retriever(spec.retriever)
        problems = [*check_source(spec, base_dir), *retriever.check(spec, base_dir)]
        if problems:
            raise RetrievalError("\n".join(problems))
        settings = checked_settings(spec)
        source = read_source(spec, base_dir)
        key = index_key(source.digest, spec, settings, base_dir)
        slot = self._slot(key)
        with slot.lock:
            if slot.index is None:
                slot.chunks = chunk_corpus(source, settings)
                slot.index = declared_index(self._make(retriever, spec, base_dir, slot.chunks, key))
            return slot.index

    def chunks_of(self, index: Index) -> Sequence[Chunk] | None:
        """The chunks ``index`` was built from (None for an index of another session)."""
        with self._guard:
            slots = list(self._slots.values())
        return next((slot.chunks for slot in slots if slot.index is index), None)

    def _make(
        self, retriever: RetrieverType, spec: RetrievalSpec, base_dir: Path, chunks: Sequence[Chunk], key: str
    ) -> Index:
        stored_key = f"{key}\0{chunks_digest(chunks)}"
        restored = self._load(retriever, stored_key, chunks, spec, base_dir)
        if restored is not None:
            return restored
        index = retriever.build(chunks, spec, base_dir)
        self._count("builds")
        if self._store is not None and isinstance(retriever, RestorableRetriever):
            state = index.state() if isinstance(index, StorableIndex) else None
            if state is not None:
                self._store.save(stored_key, state)
        return index

    def _load(
        self,
        retriever: RetrieverType,
        stored_key: str,
        chunks: Sequence[Chunk],
        spec: RetrievalSpec,
        base_dir: Path,
    ) -> Index | None:
        """The index from the disk cache, or None (no cache, no file, unusable file)."""
        if self._store is None or not isinstance(retriever, RestorableRetriever):
            return None
        state = self._store.load(stored_key)
        if state is None:
            return None
        try:
            index = retriever.restore(state, chunks, spec, base_dir)
        except Exception:  # a stale or damaged state: build afresh and overwrite it
            return None
        self._count("loads")
        return index

    def _count(self, what: str) -> None:
        with self._guard:
            setattr(self, what, getattr(self, what) + 1)

    def _retriever(self, name: str) -> RetrieverType:
        try:
            return self._retrievers[name]
        except KeyError:
            known = ", ".join(sorted(self._retrievers)) or "none"
            raise RetrievalError(f"unknown retriever {name!r} (available: {known})") from None

    def _slot(self, key: str) -> _Slot:
        with self._guard:
            return self._slots.setdefault(key, _Slot())


def index_key(digest: str, spec: RetrievalSpec, settings: ChunkSettings, base_dir: Path) -> str:
    """What identifies an index. Retriever options may name files relative to the
    spec folder, so the folder is part of the key whenever there are any."""
    options = {k: v for k, v in spec.options.items() if k not in COMMON_OPTIONS}
    key: dict[str, Any] = {
        "source": digest,
        "chunk": [settings.size, settings.overlap],
        "retriever": spec.retriever,
        "options": options,
        "base_dir": str(Path(base_dir).resolve()) if options else None,
    }
    return json.dumps(key, sort_keys=True, default=repr)


def chunks_digest(chunks: Sequence[Chunk]) -> str:
    """A hash of what is indexed (ids, titles, texts): a stored index must match it."""
    digest = hashlib.sha256()
    for chunk in chunks:
        for part in (chunk.id, chunk.doc_id, chunk.title or "", chunk.text):
            encoded = part.encode("utf-8", "surrogatepass")
            digest.update(b"%d\0" % len(encoded))
            digest.update(encoded)
    return digest.hexdigest()

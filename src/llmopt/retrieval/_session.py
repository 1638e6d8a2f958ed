"""Building each retrieval index once per process and sharing it across variants."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Mapping

from ..spec._model import RetrievalSpec
from ._base import Index, RetrievalError, RetrieverType
from ._corpus import checked_settings, chunk_corpus
from ._settings import COMMON_OPTIONS, ChunkSettings
from ._source import check_source, read_source


class _Slot:
    """One index being built or built; its lock makes other askers wait for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index: Index | None = None


class RetrievalSession:
    """Indexes by (source content, chunk settings, retriever, options), built once.

    Thread-safe: concurrent requests for the same index wait for one build;
    different indexes build in parallel. The source is read (and hashed) on every
    call, so ask once per variant rather than once per case.
    """

    def __init__(self, registry_retrievers: Mapping[str, RetrieverType]) -> None:
        self._retrievers = dict(registry_retrievers)
        self._guard = threading.Lock()
        self._slots: dict[str, _Slot] = {}

    def index_for(self, spec: RetrievalSpec, base_dir: Path) -> Index:
        """The index of ``spec`` (RetrievalError / DatasetError when it cannot be built)."""
        retriever = self._retriever(spec.retriever)
        problems = [*check_source(spec, base_dir), *retriever.check(spec, base_dir)]
        if problems:
            raise RetrievalError("\n".join(problems))
        settings = checked_settings(spec)
        source = read_source(spec, base_dir)
        slot = self._slot(_index_key(source.digest, spec, settings, base_dir))
        with slot.lock:
            if slot.index is None:
                slot.index = retriever.build(chunk_corpus(source, settings), spec, base_dir)
            return slot.index

    def _retriever(self, name: str) -> RetrieverType:
        try:
            return self._retrievers[name]
        except KeyError:
            known = ", ".join(sorted(self._retrievers)) or "none"
            raise RetrievalError(f"unknown retriever {name!r} (available: {known})") from None

    def _slot(self, key: str) -> _Slot:
        with self._guard:
            return self._slots.setdefault(key, _Slot())


def _index_key(digest: str, spec: RetrievalSpec, settings: ChunkSettings, base_dir: Path) -> str:
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

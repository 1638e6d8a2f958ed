"""The on-disk index cache: one ``.npz`` file per index, written atomically.

A file holds the numeric arrays of an :class:`IndexState` and one ``__meta__``
entry with UTF-8 JSON (format version, the full cache key, the state's metadata).
Files are read with ``allow_pickle=False``: nothing stored can run code. A file
that is missing, unreadable, corrupt or made for another key is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ._base import IndexState

#: Bump when what is stored (or how chunks and indexes are made) changes meaning.
FORMAT_VERSION = 1
_META = "__meta__"
_SUFFIX = ".npz"


class IndexStore:
    """Index files in ``folder`` (created on the first write), named by key hash."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path_for(self, key: str) -> Path:
        """The file of the index with cache key ``key``."""
        digest = hashlib.sha256(f"{FORMAT_VERSION}\0{key}".encode()).hexdigest()
        return self.folder / f"{digest[:40]}{_SUFFIX}"

    def load(self, key: str) -> IndexState | None:
        """The stored state of ``key``, or None when there is no usable file."""
        try:
            return _read(self.path_for(key), key)
        except Exception:  # corrupt, truncated, foreign or unreadable: rebuild
            return None

    def save(self, key: str, state: IndexState) -> bool:
        """Store ``state`` under ``key``; False when the folder cannot be written.

        The file is written under a unique temporary name in the same folder and
        renamed into place, so concurrent writers (pytest-xdist workers) never
        expose a half-written file: the last rename wins, and both are complete.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.path_for(key), _payload(key, state))
        except (OSError, ValueError, TypeError):
            return False
        return True


def _payload(key: str, state: IndexState) -> dict[str, Any]:
    import numpy as np

    if _META in state.arrays:
        raise ValueError(f"an index state may not name an array {_META!r}")
    meta = {"format": FORMAT_VERSION, "key": key, "meta": state.meta}
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return {**state.arrays, _META: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}


def _write_atomically(path: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    handle, temporary = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _read(path: Path, key: str) -> IndexState | None:
    import numpy as np

    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
        return None
    return IndexState(arrays=arrays, meta=meta["meta"])

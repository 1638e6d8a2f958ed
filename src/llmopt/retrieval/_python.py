"""The ``python`` retriever: your own retrieval function.

``function: "module:function"`` or ``"path/to/file.py:function"`` (relative to the
spec folder) is called with ``(query, top_k)`` and returns, best first, a list of
strings or of mappings ``{id, text, score}`` (``id``, ``score`` and ``title`` optional).
The function may be ``async``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, Awaitable, Callable, Mapping, Sequence

from ..spec._model import RetrievalSpec
from ._base import Chunk, Hit, Index, IndexBase, RetrievalError, RetrieverBase
from ._settings import check_common, is_int, is_number

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_FORMS = "'module:function' or 'path/to/file.py:function'"
SearchFunction = Callable[[str, int], Any]


class PythonRetriever(RetrieverBase):
    """Delegates retrieval to a user function; the source's chunks are not used."""

    name = "python"

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        reference = spec.options.get("function")
        return [*check_common(spec, ("function",)), *check_reference(reference, base_dir)]

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        reference = str(spec.options.get("function"))
        return FunctionIndex(load_function(reference, base_dir), reference)


def check_reference(reference: Any, base_dir: Path) -> list[str]:
    """Problems with a function reference, found without importing anything."""
    if reference is None:
        return [f"retrieval.function is required by retriever 'python' ({_FORMS})"]
    target, _, attribute = str(reference).rpartition(":")
    if not isinstance(reference, str) or not target or not _DOTTED.match(attribute):
        return [f"retrieval.function must be {_FORMS}, got {reference!r}"]
    if target.endswith(".py"):
        path = Path(base_dir) / target
        if not path.is_file():
            return [f"retrieval.function file {target!r} not found (resolved to {path})"]
        return []
    if not _DOTTED.match(target):
        return [f"retrieval.function: {target!r} is not a module name ({_FORMS})"]
    return []


def load_function(reference: str, base_dir: Path) -> SearchFunction:
    """Import the function named by ``reference`` (RetrievalError when impossible)."""
    problems = check_reference(reference, base_dir)
    if problems:
        raise RetrievalError("\n".join(problems))
    target, _, attribute = reference.rpartition(":")
    if target.endswith(".py"):
        module = _import_file(Path(base_dir) / target)
    else:
        module = _import_module(target, Path(base_dir))
    found: Any = module
    for part in attribute.split("."):
        found = getattr(found, part, None)
    if not callable(found):
        raise RetrievalError(
            f"retrieval.function {reference!r}: {target} has no function {attribute!r}"
        )
    return found


class FunctionIndex(IndexBase):
    """Calls the user's function for every query and turns its answer into hits."""

    def __init__(self, function: SearchFunction, reference: str) -> None:
        self._function = function
        self._reference = reference
        self._label = reference.rpartition(":")[2]

    def search(self, query: str, top_k: int) -> list[Hit]:
        if top_k < 1:
            return []
        try:
            result = self._function(query, top_k)
            if inspect.isawaitable(result):
                result = _wait(result)
        except Exception as exc:
            raise RetrievalError(
                f"retrieval function {self._reference!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return self._hits(result)[:top_k]

    def _hits(self, result: Any) -> list[Hit]:
        if isinstance(result, (str, bytes, Mapping)) or not isinstance(result, Sequence):
            raise RetrievalError(
                f"retrieval function {self._reference!r} must return a list of strings or of"
                f" {{id, text, score}} mappings, got {type(result).__name__}"
            )
        return [self._hit(item, rank) for rank, item in enumerate(result, start=1)]

    def _hit(self, item: Any, rank: int) -> Hit:
        if isinstance(item, str):
            chunk = Chunk(id=f"{self._label}#{rank}", doc_id=self._label, text=item)
            return Hit(chunk=chunk, score=1.0 / rank, rank=rank)
        if not isinstance(item, Mapping) or not isinstance(item.get("text"), str):
            raise RetrievalError(self._bad_item(rank, "a string or a mapping with a 'text' string"))
        score = item.get("score", 1.0 / rank)
        if not is_number(score):
            raise RetrievalError(self._bad_item(rank, "a number as 'score'"))
        return Hit(chunk=self._chunk(item, rank), score=float(score), rank=rank)

    def _chunk(self, item: Mapping[str, Any], rank: int) -> Chunk:
        raw_id = item.get("id")
        valid_id = (isinstance(raw_id, str) and raw_id) or is_int(raw_id)
        chunk_id = str(raw_id) if valid_id else f"{self._label}#{rank}"
        doc_id, _, number = chunk_id.rpartition("#")
        if not (doc_id and number.isdigit()):
            doc_id = chunk_id
        title = item.get("title") if isinstance(item.get("title"), str) else None
        return Chunk(id=chunk_id, doc_id=doc_id, text=item["text"], title=title)

    def _bad_item(self, rank: int, wanted: str) -> str:
        return f"retrieval function {self._reference!r}: result {rank} must be {wanted}"


def _wait(awaitable: Awaitable[Any]) -> Any:
    """The result of an awaitable, on a fresh event loop (in a thread if one is running)."""

    async def wait() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, wait()).result()


def _import_file(path: Path) -> ModuleType:
    path = path.resolve()
    name = "llmopt_retrieval_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RetrievalError(f"retrieval.function: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    _ensure_importable(path.parent)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise RetrievalError(_import_failed(str(path), exc)) from exc
    return module


def _import_module(name: str, base_dir: Path) -> ModuleType:
    _ensure_importable(base_dir)
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise RetrievalError(_import_failed(repr(name), exc)) from exc


def _import_failed(what: str, exc: Exception) -> str:
    return f"retrieval.function: importing {what} failed: {type(exc).__name__}: {exc}"


def _ensure_importable(folder: Path) -> None:
    """Let the user's module import its neighbours, as running it as a script would."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)

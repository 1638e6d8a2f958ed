"""The ``python`` provider: calls the user's own function (a RAG pipeline, an agent).

The function (plain or ``async``) gets, as keyword arguments, whichever of
``prompt``, ``messages``, ``case``, ``context`` and ``params`` its signature names
(all of them with ``**kwargs``) and returns the output text. Plain functions run in a
worker thread so they do not block the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import LLMOptError, ProviderError, ProviderUnavailable
from ..spec._model import ModelSpec
from ._base import ProviderBase, Request, Response
from ._python_source import source_digest
from ._python_target import Target, injected_names, load_function, parse_target

__all__ = ["PythonProvider", "PythonProviderType"]

_DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True)
class _Loaded:
    """The imported function and the arguments it takes."""

    func: Callable[..., Any]
    names: tuple[str, ...]
    label: str


class PythonProvider(ProviderBase):
    """Calls one user function per request; cached only with ``cache: true``."""

    #: The case's fields and context reach the function, so they belong in the cache key.
    cache_includes_case: bool = True

    def __init__(self, spec: ModelSpec, base_dir: Path, target: Target) -> None:
        self.concurrency = spec.concurrency or _DEFAULT_CONCURRENCY
        self.cacheable = bool(spec.options.get("cache", False))
        self._spec = spec
        self._base_dir = base_dir
        self._target = target
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._source: str | None = None

    def identity(self) -> Mapping[str, Any]:
        """The function's id and, when its answers are cached, the digest of its source
        (its module and the project modules that imports), so an edit invalidates them."""
        if not self.cacheable:
            return {"id": self._spec.id}
        if self._source is None:
            self._source = source_digest(self._target, self._base_dir) or ""
        return {"id": self._spec.id, "source": self._source or None}

    async def generate(self, request: Request) -> Response:
        loaded = self._loaded if self._loaded is not None else await asyncio.to_thread(self._load)
        kwargs = _arguments(loaded.names, request)
        start = time.perf_counter()
        try:
            result = await _call(loaded.func, kwargs)
        except LLMOptError:
            raise
        except Exception as exc:
            raise ProviderError(
                f"python provider function {loaded.label}() raised {type(exc).__name__}: {exc}"
            ) from exc
        latency = time.perf_counter() - start
        if not isinstance(result, str):
            raise ProviderError(
                f"python provider function must return a str, got {type(result).__name__}"
            )
        return Response(text=result, latency_s=latency, model=self._spec.id)

    def _load(self) -> _Loaded:
        """Import the function once (under a lock: several threads may ask at once)."""
        with self._lock:
            if self._loaded is None:
                func = load_function(self._target, self._base_dir)
                names = injected_names(func, self._target.raw)
                self._loaded = _Loaded(func, names, self._target.attr)
            return self._loaded


def _arguments(names: tuple[str, ...], request: Request) -> dict[str, Any]:
    available: dict[str, Any] = {
        "prompt": request.prompt,
        "messages": [dict(m) for m in request.messages],
        "case": dict(request.case.fields),
        "context": request.context,
        "params": dict(request.params),
    }
    return {name: available[name] for name in names}


async def _call(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    # An object whose __call__ is async is awaited too (B004: not a test of callability).
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None)):  # noqa: B004
        return await func(**kwargs)
    result = await asyncio.to_thread(func, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


class PythonProviderType:
    """``model: {provider: python, id: "module:function"}``."""

    name: str = "python"

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        """The id's form and, for a file, that it exists; the user's code is not imported."""
        try:
            target = parse_target(spec.id)
        except ValueError as exc:
            return [str(exc)]
        if target.file is not None and not target.file_path(base_dir).is_file():
            return [f"python file not found: {target.file_path(base_dir)}"]
        return []

    def create(self, spec: ModelSpec, base_dir: Path) -> PythonProvider:
        try:
            target = parse_target(spec.id)
        except ValueError as exc:
            raise ProviderUnavailable(str(exc)) from None
        return PythonProvider(spec, base_dir, target)

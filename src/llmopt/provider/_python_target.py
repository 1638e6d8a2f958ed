"""Finding and importing the user's function named by a python provider's ``id``.

``id`` is ``"module:function"`` (a module importable from the spec's folder or from
``sys.path``) or ``"path/to/file.py:function"`` (relative to the spec's folder).
Parsing is cheap and imports nothing; importing happens on first use.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ..errors import ProviderUnavailable

__all__ = ["Target", "parse_target", "load_function", "injected_names", "INJECTABLE"]

#: The argument names a user's function may ask for.
INJECTABLE = ("prompt", "messages", "case", "context", "params")

_FORMAT = "'module:function' or 'path/to/file.py:function'"


@dataclass(frozen=True)
class Target:
    """A parsed ``id``: either a module name or a file path, and the function name."""

    raw: str
    attr: str
    module: str | None = None
    file: str | None = None

    def file_path(self, base_dir: Path) -> Path:
        """The file named by the id, resolved against the spec's folder."""
        assert self.file is not None
        path = Path(self.file).expanduser()
        return path if path.is_absolute() else (base_dir / path)


def parse_target(raw: str | None) -> Target:
    """Parse an ``id``; raise ValueError with a user-facing message when it is malformed."""
    if not raw:
        raise ValueError(f"the python provider needs model.id: {_FORMAT}")
    where, sep, attr = raw.rpartition(":")
    if not sep or not where or not _is_dotted_name(attr):
        raise ValueError(f"model.id must be {_FORMAT}, got {raw!r}")
    if where.endswith(".py") or "/" in where or "\\" in where:
        return Target(raw=raw, attr=attr, file=where)
    if not _is_dotted_name(where):
        raise ValueError(f"model.id must be {_FORMAT}, got {raw!r} ({where!r} is not a module name)")
    return Target(raw=raw, attr=attr, module=where)


def _is_dotted_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def load_function(target: Target, base_dir: Path) -> Callable[..., Any]:
    """Import the module or file and return the named callable."""
    module = _import_file(target, base_dir) if target.file else _import_module(target, base_dir)
    obj: Any = module
    for part in target.attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ProviderUnavailable(
                f"python provider {target.raw!r}: {module.__name__} has no attribute {target.attr!r}"
            ) from None
    if not callable(obj):
        raise ProviderUnavailable(f"python provider {target.raw!r}: {target.attr!r} is not callable")
    return obj


def _import_module(target: Target, base_dir: Path) -> ModuleType:
    assert target.module is not None
    _add_to_path(base_dir)
    try:
        return importlib.import_module(target.module)
    except Exception as exc:
        raise ProviderUnavailable(
            f"python provider {target.raw!r}: cannot import {target.module}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _import_file(target: Target, base_dir: Path) -> ModuleType:
    path = target.file_path(base_dir).resolve()
    name = f"_llmopt_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise ProviderUnavailable(f"python provider {target.raw!r}: file not found: {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProviderUnavailable(f"python provider {target.raw!r}: cannot load {path}")
    _add_to_path(path.parent)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ProviderUnavailable(
            f"python provider {target.raw!r}: cannot import {path}: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _add_to_path(folder: Path) -> None:
    """Let the user's code import its neighbours (as pytest's rootdir insertion does)."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)


def injected_names(func: Callable[..., Any], raw: str) -> tuple[str, ...]:
    """Which of INJECTABLE ``func`` takes (all of them with ``**kwargs``).

    A required parameter llmopt cannot supply is a ProviderUnavailable.
    """
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError) as exc:
        raise ProviderUnavailable(f"python provider {raw!r}: cannot read its signature: {exc}") from exc
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return INJECTABLE
    names: list[str] = []
    for p in parameters:
        if p.name in INJECTABLE and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(p.name)
        elif p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ProviderUnavailable(
                f"python provider {raw!r}: parameter {p.name!r} cannot be supplied; "
                f"the function may take any of {', '.join(INJECTABLE)}"
            )
    return tuple(names)

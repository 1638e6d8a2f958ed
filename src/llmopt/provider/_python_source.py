"""The digest of a python provider's source: its function's module and every module of
the project that module imports, found without importing anything.

It goes into the provider's identity, so cached answers (``options: {cache: true}``)
are keyed on the code that made them: an edit to the function's file, or to a project
module it imports (directly or through others), makes the next run call it again.
Modules outside the project (the standard library, installed packages, anything
under the running interpreter's prefix) are left out.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Iterator

from ._python_target import Target

__all__ = ["project_root", "source_digest"]

#: Files that mark a project's root folder.
_PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini", ".git")
#: Most files followed (a guard against walking a whole monorepo).
_MAX_FILES = 500


def project_root(base_dir: Path) -> Path:
    """The nearest folder at or above ``base_dir`` marking a project, else ``base_dir``."""
    start = base_dir.resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in _PROJECT_MARKERS):
            return folder
    return start


def source_digest(target: Target, base_dir: Path) -> str | None:
    """SHA-256 over the path and bytes of the target's module and the project modules
    it imports; None when the module's file cannot be found (it then fails to load)."""
    first = _target_file(target, base_dir)
    if first is None:
        return None
    roots = (project_root(base_dir), first.parent)
    digest = hashlib.sha256()
    for path in _closure(first, base_dir, roots):
        digest.update(_shown(path, roots[0]).encode("utf-8", "surrogateescape") + b"\0")
        digest.update(_read(path) + b"\0")
    return digest.hexdigest()


def _shown(path: Path, root: Path) -> str:
    """The file's name in the digest: relative to the project, so that another checkout
    of the same code shares the cache."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def _target_file(target: Target, base_dir: Path) -> Path | None:
    if target.file is not None:
        path = target.file_path(base_dir)
        return path.resolve() if path.is_file() else None
    assert target.module is not None
    return _module_file(target.module, [str(base_dir.resolve()), *sys.path])


def _module_file(name: str, search: list[str]) -> Path | None:
    """The source file of module ``name`` (a package's ``__init__.py``), looked up part
    by part on ``search`` as the import system would, without importing anything."""
    loaded = sys.modules.get(name)
    known = getattr(loaded, "__file__", None)
    if known:
        return Path(known).resolve()
    locations: list[str] | None = search
    spec = None
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        try:
            spec = PathFinder.find_spec(".".join(parts[:depth]), locations)
        except (ImportError, ValueError, OSError):
            return None
        if spec is None:
            return None
        locations = list(spec.submodule_search_locations or [])
    origin = spec.origin if spec is not None else None
    return Path(origin).resolve() if origin and origin.endswith(".py") else None


def _closure(first: Path, base_dir: Path, roots: tuple[Path, ...]) -> list[Path]:
    """``first`` and the project files it imports, transitively, in a stable order."""
    seen: dict[Path, None] = {first: None}
    queue = [first]
    while queue and len(seen) < _MAX_FILES:
        path = queue.pop()
        _, top = _package_of(path)
        search = [str(path.parent), str(top), str(base_dir.resolve()), *sys.path]
        for name in _imported_names(path):
            found = _module_file(name, search)
            if found is not None and found not in seen and _in_project(found, roots):
                seen[found] = None
                queue.append(found)
    return sorted(seen)


def _imported_names(path: Path) -> Iterator[str]:
    """Every module name an ``import`` in ``path`` may load (``from a import b`` may
    load ``a.b``); relative imports are resolved against the file's package."""
    try:
        tree = ast.parse(_read(path), filename=str(path))
    except (SyntaxError, ValueError):
        return
    package, _ = _package_of(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _prefixes(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            if base:
                yield from _prefixes(base)
                yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def _prefixes(name: str) -> Iterator[str]:
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        yield ".".join(parts[:depth])


def _absolute(module: str | None, level: int, package: str) -> str | None:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    head = parts[: len(parts) - (level - 1)]
    joined = ".".join([*head, module] if module else head)
    return joined or None


def _package_of(path: Path) -> tuple[str, Path]:
    """The dotted package a file belongs to (from the ``__init__.py`` files above it)
    and the folder holding that package's top."""
    names: list[str] = []
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        names.insert(0, folder.name)
        folder = folder.parent
    return ".".join(names), folder


def _in_project(path: Path, roots: tuple[Path, ...]) -> bool:
    """True for a file under one of ``roots`` and outside the interpreter's own folders
    (a virtual environment inside the project is not the project's code)."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    if any(part in ("site-packages", "dist-packages") for part in path.parts):
        return False
    if any(path.is_relative_to(prefix) for prefix in prefixes):
        return False
    return any(path.is_relative_to(root) for root in roots)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""

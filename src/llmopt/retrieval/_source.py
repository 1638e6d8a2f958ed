"""Finding the files of a retrieval source and reading their bytes.

``source`` is relative to the spec folder: a folder (searched recursively for text
documents), one file, or a glob pattern. Nothing here parses documents.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from ..spec._model import RetrievalSpec
from ._documents import CORPUS_SUFFIXES, TEXT_SUFFIXES

FILE_SUFFIXES = (*TEXT_SUFFIXES, *CORPUS_SUFFIXES)
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class SourceFile:
    """One file of a source and the id of the document it holds."""

    path: Path
    doc_id: str


@dataclass(frozen=True)
class SourceData:
    """The files of a source with their bytes and a digest of all of them."""

    label: str
    files: tuple[SourceFile, ...]
    contents: tuple[bytes, ...]
    digest: str


def check_source(spec: RetrievalSpec, base_dir: Path) -> list[str]:
    """Problems with ``spec.source`` found without reading any document (cheap)."""
    source = spec.source
    if source is None:
        return []
    if not isinstance(source, str) or not source.strip():
        return [f"retrieval.source must be a non-empty path, got {source!r}"]
    if is_glob(source):
        if _glob_files(source, base_dir):
            return []
        return [
            f"retrieval.source {source!r} matches no {_kinds(FILE_SUFFIXES)} file"
            f" (pattern resolved to {_glob_pattern(source, base_dir)})"
        ]
    return _check_path(source, resolve(source, base_dir))


def read_source(spec: RetrievalSpec, base_dir: Path) -> SourceData:
    """The bytes of every file of the source (DatasetError when there is none)."""
    if spec.source is None:
        return SourceData("(none)", (), (), hashlib.sha256().hexdigest())
    files = source_files(spec, base_dir)
    contents = tuple(_read(f.path) for f in files)
    digest = hashlib.sha256()
    for file, data in zip(files, contents, strict=True):
        digest.update(f"{file.doc_id}\0{len(data)}\0".encode())
        digest.update(data)
    label = f"{spec.source!r} (resolved to {resolve(spec.source, base_dir)})"
    return SourceData(label, tuple(files), contents, digest.hexdigest())


def source_files(spec: RetrievalSpec, base_dir: Path) -> list[SourceFile]:
    """The files of the source, sorted by document id."""
    problems = check_source(spec, base_dir)
    if problems:
        raise DatasetError("\n".join(problems))
    source = str(spec.source)
    path = resolve(source, base_dir)
    if is_glob(source):
        files = _glob_files(source, base_dir)
    elif path.is_dir():
        files = _folder_files(path)
    else:
        files = [SourceFile(path, _relative(path, base_dir))]
    if not files:
        raise DatasetError(
            f"retrieval.source {source!r} has no documents ({_kinds(TEXT_SUFFIXES)} files)"
            f" (resolved to {path})"
        )
    return sorted(files, key=lambda f: f.doc_id)


def is_glob(source: str) -> bool:
    return any(char in _GLOB_CHARS for char in source)


def resolve(source: str, base_dir: Path) -> Path:
    """``source`` relative to the spec folder, normalized (symlinks left alone)."""
    return Path(os.path.normpath(Path(base_dir) / source))


def _check_path(source: str, path: Path) -> list[str]:
    if not path.exists():
        return [f"retrieval.source {source!r} not found (resolved to {path})"]
    if path.is_file() and path.suffix.lower() not in FILE_SUFFIXES:
        return [
            f"retrieval.source {source!r} is not a supported document"
            f" ({_kinds(FILE_SUFFIXES)}) (resolved to {path})"
        ]
    return []


def _glob_pattern(source: str, base_dir: Path) -> str:
    if os.path.isabs(source):
        return source
    return os.path.join(glob.escape(str(base_dir)), source)


def _glob_files(source: str, base_dir: Path) -> list[SourceFile]:
    matches = sorted(set(glob.glob(_glob_pattern(source, base_dir), recursive=True)))
    return [
        SourceFile(Path(os.path.normpath(match)), _relative(Path(match), base_dir))
        for match in matches
        if os.path.isfile(match) and Path(match).suffix.lower() in FILE_SUFFIXES
    ]


def _folder_files(folder: Path) -> list[SourceFile]:
    files = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
            files.append(SourceFile(path, relative.as_posix()))
    return files


def _relative(path: Path, base_dir: Path) -> str:
    try:
        return Path(os.path.relpath(os.path.normpath(path), os.path.normpath(base_dir))).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read retrieval document {path}: {exc.strerror or exc}") from exc


def _kinds(suffixes: tuple[str, ...]) -> str:
    return "/".join(suffix.lstrip(".") for suffix in suffixes)

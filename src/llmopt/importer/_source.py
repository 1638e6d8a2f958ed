"""Reading the files a promptfoo config names: YAML or JSON with positions, JSONL, CSV."""

from __future__ import annotations

import csv
import glob
import io
import json
from pathlib import Path
from typing import Any

from ..errors import LLMOptError
from ..spec._problems import KeyPath, Spots, key_text
from ..spec._yaml import parse_yaml
from ._notes import Source

FILE_PREFIX = "file://"


class ConfigError(LLMOptError):
    """The config (or a file it needs) cannot be read: nothing is written."""


def shown(path: Path) -> str:
    """``path`` relative to the current folder when it is below it."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def read_document(path: Path, mapping: bool = True) -> tuple[Any, Source]:
    """The data of a YAML or JSON file and where its keys are (a list too, unless
    ``mapping``)."""
    doc, issues = parse_yaml(_text(path), kind="promptfoo file", start="prompts:")
    if not mapping and doc is not None:
        issues = [i for i in issues if i.path or "must be a mapping" not in i.message]
    if issues or doc is None:
        spots = doc.spots if doc else Spots()
        lines = [_issue_line(path, spots, i.path, i.line, i.message) for i in issues]
        raise ConfigError("\n".join(lines) or f"{shown(path)}: cannot read")
    return doc.data, Source(path, shown(path), doc.spots)


def _issue_line(path: Path, spots: Spots, key: tuple[Any, ...], line: int | None, message: str) -> str:
    spot = spots.find(key)
    number = line or (spot[0] if spot else None)
    where = f"{shown(path)}:{number}" if number else shown(path)
    return f"{where}: {key_text(key) + ': ' if key else ''}{message}"


def is_file_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FILE_PREFIX)


def ref_path(base: Path, value: str) -> Path:
    """The file a ``file://`` reference (or a bare path) names, relative to ``base``."""
    raw = value.removeprefix(FILE_PREFIX)
    path = Path(raw).expanduser()
    return path if path.is_absolute() else base / path


def expand(base: Path, value: str) -> list[Path]:
    """The files a reference names; a glob gives every match, sorted."""
    path = ref_path(base, value)
    if glob.has_magic(str(path)):
        return sorted(Path(p) for p in glob.glob(str(path), recursive=True))
    return [path]


def read_rows(path: Path) -> tuple[list[Any], Source]:
    """The rows of a tests file (YAML/JSON list, JSONL or CSV) and its source."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl(path), Source(path, shown(path), _row_spots(path))
    if suffix == ".csv":
        return _csv(path)
    data, source = read_document(path, mapping=False)
    return (data if isinstance(data, list) else [data]), source


def _jsonl(path: Path) -> list[Any]:
    rows = []
    for number, line in enumerate(_text(path).splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise ConfigError(f"{shown(path)}:{number}: not JSON: {exc}") from None
    return rows


def _csv(path: Path) -> tuple[list[Any], Source]:
    reader = csv.DictReader(io.StringIO(_text(path), newline=""))
    rows: list[Any] = []
    keys: dict[KeyPath, tuple[int, int]] = {}
    start = 2
    for row in reader:
        keys[(len(rows),)] = (start, 1)
        rows.append({k: v for k, v in row.items() if k is not None})
        start = reader.line_num + 1
    return rows, Source(path, shown(path), Spots(keys=keys))


def _row_spots(path: Path) -> Spots:
    """Row ``i`` of a JSONL file is on its ``i``-th non-blank line."""
    lines = [n for n, line in enumerate(_text(path).splitlines(), 1) if line.strip()]
    keys: dict[KeyPath, tuple[int, int]] = {(i,): (line, 1) for i, line in enumerate(lines)}
    return Spots(keys=keys)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown(path)}: cannot read: {exc}") from None

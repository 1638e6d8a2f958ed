"""Readers for the JSON-family and CSV dataset formats.

Each reader takes the file's path and the label used in messages, and returns the
raw rows with their line numbers plus every problem met. JSONL and CSV are read line
by line; a JSON list is read whole (its rows' line numbers are recovered by a scan).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Iterator

from ._rows import RawRow, RowsResult, kind_of

__all__ = ["read_jsonl", "read_csv", "read_json", "read_text"]

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def read_jsonl(path: Path, label: str) -> RowsResult:
    """One JSON value per line; blank lines are skipped; every bad line is kept as such."""
    rows: list[RawRow] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if raw.strip():
                rows.append(_jsonl_row(raw, f"{label}:{number}", f"line {number}"))
    return rows, []


def _jsonl_row(raw: bytes, where: str, ref: str) -> RawRow:
    try:
        return RawRow(where, ref, json.loads(raw.decode("utf-8").rstrip("\r\n")))
    except UnicodeDecodeError as exc:
        error = f"not valid UTF-8 text (byte {exc.start + 1} of the line)"
    except json.JSONDecodeError as exc:
        error = f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        error = "invalid JSON: values nest too deeply"
    except ValueError as exc:  # a number of more than 4300 digits
        error = f"invalid JSON: {exc}"
    return RawRow(where, ref, None, error=error)


def read_csv(path: Path, label: str) -> RowsResult:
    """A header row, then one row per record; every value stays a string.

    Records whose cells are all blank are skipped. A record that breaks the CSV
    syntax (or the text encoding) ends the reading, as a bad row.
    """
    rows: list[RawRow] = []
    problems: list[str] = []
    header: list[str] | None = None
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        for line, record in _records(reader, label, rows):
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = record
                problems.extend(_header_problems(record, f"{label}:{line}"))
            else:
                rows.append(_csv_row(header, record, f"{label}:{line}", line))
    return rows, problems


def _records(reader: Any, label: str, rows: list[RawRow]) -> Iterator[tuple[int, list[str]]]:
    """Each record with the line it starts on; a reading error becomes a bad row."""
    start = 1
    try:
        for record in reader:
            yield start, record
            start = reader.line_num + 1
    except csv.Error as exc:
        error = f"invalid CSV: {exc}"
    except UnicodeDecodeError:
        error = "not valid UTF-8 text"
    else:
        return
    rows.append(RawRow(f"{label}:{start}", f"line {start}", None, error=error))


def _header_problems(header: list[str], where: str) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for column, name in enumerate(header, start=1):
        if not name.strip():
            problems.append(f"{where}: empty column name in the header (column {column})")
        elif name in seen:
            problems.append(f"{where}: duplicate column {name!r} in the header")
        seen.add(name)
    return problems


def _csv_row(header: list[str], record: list[str], where: str, line: int) -> RawRow:
    if len(record) != len(header):
        error = f"row has {len(record)} values, the header has {len(header)}"
        return RawRow(where, f"line {line}", None, error=error)
    return RawRow(where, f"line {line}", dict(zip(header, record, strict=True)))


def read_text(path: Path, label: str) -> tuple[str, list[str]]:
    """The whole file as text (UTF-8, optional BOM), or a problem naming the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return "", [f"{label}:{line}: not valid UTF-8 text"]


def read_json(path: Path, label: str) -> RowsResult:
    """A JSON document holding a list of rows."""
    text, problems = read_text(path, label)
    if problems:
        return [], problems
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [f"{label}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"]
    except RecursionError:
        return [], [f"{label}: invalid JSON: values nest too deeply"]
    except ValueError as exc:
        return [], [f"{label}: invalid JSON: {exc}"]
    if not isinstance(data, list):
        got = "object" if isinstance(data, dict) else kind_of(data)
        return [], [f"{label}:1: a JSON dataset must be a list of objects, got {got}"]
    lines = _element_lines(text)
    return [RawRow(f"{label}:{n}", f"line {n}", v) for v, n in zip(data, lines, strict=True)], []


def _element_lines(text: str) -> list[int]:
    """The 1-based line on which each element of a valid top-level JSON list starts."""
    decoder = json.JSONDecoder()
    pos = _skip(text, 0) + 1
    line, counted = 1, 0
    lines: list[int] = []
    while True:
        pos = _skip(text, pos)
        if text[pos] == "]":
            return lines
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text[pos] == ",":
            pos += 1


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos

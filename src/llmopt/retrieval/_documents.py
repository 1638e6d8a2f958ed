"""Reading source files into documents: Markdown, text, HTML and JSONL corpora."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import DatasetError
from ._html import html_to_text
from ._sections import strip_front_matter

MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
TEXT_SUFFIXES = (*MARKDOWN_SUFFIXES, ".txt", *HTML_SUFFIXES)
CORPUS_SUFFIXES = (".jsonl",)
MAX_LISTED = 20


@dataclass(frozen=True)
class Document:
    """One document of a source. ``markdown`` says whether headings split it."""

    id: str
    text: str
    title: str | None = None
    markdown: bool = True


def parse_file(path: Path, doc_id: str, data: bytes) -> list[Document]:
    """The documents in one file: one per text file, one per row of a JSONL corpus."""
    text = _decode(path, data)
    suffix = path.suffix.lower()
    if suffix in CORPUS_SUFFIXES:
        return _parse_jsonl(path, text)
    if suffix in HTML_SUFFIXES:
        return [Document(doc_id, html_to_text(text))]
    if suffix in MARKDOWN_SUFFIXES:
        return [Document(doc_id, strip_front_matter(text))]
    return [Document(doc_id, text, markdown=False)]


def check_unique(documents: Iterable[Document]) -> None:
    """Raise DatasetError when two documents share an id (their chunk ids would clash)."""
    seen: set[str] = set()
    duplicates: list[str] = []
    for document in documents:
        if document.id in seen and document.id not in duplicates:
            duplicates.append(document.id)
        seen.add(document.id)
    if duplicates:
        raise DatasetError(problem_list("duplicate document ids in retrieval source", duplicates))


def problem_list(head: str, problems: list[str]) -> str:
    """One message listing ``problems`` (at most MAX_LISTED of them) under ``head``."""
    if len(problems) == 1:
        return f"{head}: {problems[0]}"
    lines = [f"  {p}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
    return "\n".join([f"{head} ({len(problems)} problems):", *lines])


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_jsonl(path: Path, text: str) -> list[Document]:
    documents: list[Document] = []
    problems: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            documents.append(_jsonl_document(line))
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}")
    if problems:
        raise DatasetError(problem_list("invalid retrieval corpus", problems))
    return documents


def _jsonl_document(line: str) -> Document:
    try:
        row: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, Mapping):
        raise ValueError(f"expected a JSON object with 'id' and 'text', got {type(row).__name__}")
    return Document(id=_row_id(row), text=_row_text(row), title=_row_title(row))


def _row_id(row: Mapping[str, Any]) -> str:
    value = row.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ValueError(f"'id' must be a non-empty string or an integer, got {_short(value)}")
    return str(value)


def _row_text(row: Mapping[str, Any]) -> str:
    value = row.get("text")
    if not isinstance(value, str):
        raise ValueError(f"'text' must be a string, got {_short(value)}")
    return value.replace("\r\n", "\n")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _row_title(row: Mapping[str, Any]) -> str | None:
    value = row.get("title")
    if value is not None and not isinstance(value, str):
        raise ValueError(f"'title' must be a string, got {_short(value)}")
    return value or None

"""promptfoo ``prompts`` as recipe templates: inline text, ``file://`` text or chat files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec._problems import KeyPath
from ._notes import Notes, Source
from ._nunjucks import to_jinja
from ._source import ConfigError, expand, is_file_ref, read_document, shown

_CODE = (".py", ".js", ".ts", ".mjs", ".cjs")
_SPLIT = re.compile(r"^---$", re.MULTILINE)


@dataclass(frozen=True)
class Prompt:
    """One prompt of the matrix, as an inline llmopt recipe."""

    label: str
    template: str
    system: str | None = None


@dataclass(frozen=True)
class _Raw:
    label: str | None
    text: Any
    path: KeyPath


def load_prompts(config: dict[str, Any], source: Source, notes: Notes) -> list[Prompt]:
    """Every prompt of the config that converts; the others go to ``notes``."""
    entries = config.get("prompts")
    if entries is None:
        raise ConfigError(f"{source.where(())}: prompts: missing (a promptfoo config lists its prompts)")
    base = source.path.parent
    found: list[Prompt] = []
    for raw in _entries(entries, source, notes):
        for item in _read(raw, base, source, notes):
            prompt = _convert(item, f"prompt-{len(found) + 1}", source, notes)
            if prompt is not None:
                found.append(prompt)
    return found


def _entries(entries: Any, source: Source, notes: Notes) -> list[_Raw]:
    if isinstance(entries, str):
        return [_Raw(None, entries, ("prompts",))]
    if isinstance(entries, dict):  # {"file://a.txt": "label"}
        return [_Raw(str(label), key, ("prompts", key)) for key, label in entries.items()]
    out = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        path: KeyPath = ("prompts", i)
        if isinstance(entry, str):
            out.append(_Raw(None, entry, path))
        elif isinstance(entry, dict) and isinstance(entry.get("raw", entry.get("id")), str):
            text = entry.get("raw", entry.get("id"))
            label = entry.get("label") or (entry.get("id") if not is_file_ref(entry.get("id")) else None)
            out.append(_Raw(str(label) if label else None, text, path))
            for key in sorted(set(entry) - {"raw", "id", "label"}):
                notes.skip(source, (*path, key), "this prompt option has no llmopt form")
        else:
            notes.skip(source, path, "not a prompt (text, file:// or {raw, label})")
    return out


def _read(raw: _Raw, base: Path, source: Source, notes: Notes) -> list[_Raw]:
    """Inline text as is; a file reference as the prompts of each file it names."""
    if not is_file_ref(raw.text):
        return [raw]
    paths = expand(base, raw.text)
    if not paths:
        notes.skip(source, raw.path, f"no file matches {raw.text}")
    out = []
    for path in paths:
        out += _file_prompts(raw, path, source, notes, single=len(paths) == 1)
    return out


def _file_prompts(raw: _Raw, path: Path, source: Source, notes: Notes, single: bool) -> list[_Raw]:
    label = raw.label if raw.label and single else path.stem if single or not raw.label else f"{raw.label}-{path.stem}"
    if path.suffix.lower() in _CODE or ":" in path.name:
        notes.skip(source, raw.path, f"prompt functions ({shown(path)}) are not converted")
        return []
    if not path.is_file():
        notes.skip(source, raw.path, f"no such prompt file: {shown(path)}")
        return []
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        data, _ = read_document(path, mapping=False)
        return [_Raw(label, data, raw.path)]
    parts = [p.strip("\n") for p in _SPLIT.split(path.read_text(encoding="utf-8")) if p.strip()]
    return [_Raw(label if len(parts) == 1 else f"{label}-{i}", p, raw.path) for i, p in enumerate(parts, 1)]


def _convert(raw: _Raw, default: str, source: Source, notes: Notes) -> Prompt | None:
    messages = _chat(raw.text)
    if messages is None and not isinstance(raw.text, str):
        notes.skip(source, raw.path, "a prompt file must hold text or a list of chat messages")
        return None
    system, user = _split_chat(messages) if messages is not None else (None, raw.text)
    if user is None:
        notes.skip(
            source,
            raw.path,
            "chat prompts other than [system?, user] (assistant turns, several user messages) have no inline llmopt form",
        )
        return None
    converted = [to_jinja(text) if text is not None else None for text in (system, user)]
    problems = [p for c in converted if c is not None for p in c.problems]
    if problems:
        notes.skip(source, raw.path, "; ".join(problems))
        return None
    return Prompt(raw.label or default, converted[1].text if converted[1] else "", converted[0].text if converted[0] else None)


def _chat(text: Any) -> list[Any] | None:
    """The chat messages of a prompt written as a JSON (or YAML) list, else None."""
    if isinstance(text, str) and text.lstrip().startswith("["):
        try:
            text = json.loads(text)
        except ValueError:
            return None
    if isinstance(text, list) and all(isinstance(m, dict) and "role" in m for m in text):
        return text
    return None


def _split_chat(messages: list[Any]) -> tuple[str | None, str | None]:
    roles = [m.get("role") for m in messages]
    contents = [m.get("content") for m in messages]
    if not all(isinstance(c, str) for c in contents):
        return None, None
    if roles == ["user"]:
        return None, contents[0]
    if roles == ["system", "user"]:
        return contents[0], contents[1]
    return None, None

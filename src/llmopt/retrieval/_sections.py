"""Markdown structure: front matter and the sections between headings.

Only ATX headings (``# Title`` .. ``###### Title``) start sections; lines inside
fenced code blocks are never headings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Section:
    """The text under one heading. ``heading`` is the line as written, ``title`` its text."""

    heading: str | None
    title: str | None
    body: str


def strip_front_matter(text: str) -> str:
    """``text`` without a leading YAML front-matter block (``---`` ... ``---``)."""
    return _FRONT_MATTER.sub("", text, count=1)


def split_sections(text: str, markdown: bool) -> list[Section]:
    """The sections of ``text``; plain text is one section without a heading."""
    if not markdown:
        return [Section(None, None, text.strip())]
    sections: list[Section] = []
    heading: re.Match[str] | None = None
    lines: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        fence = _next_fence(line, fence)
        match = _HEADING.match(line) if fence is None else None
        if match is None:
            lines.append(line)
            continue
        sections.append(_section(heading, lines))
        heading, lines = match, []
    sections.append(_section(heading, lines))
    return [s for s in sections if s.body]


def _section(heading: re.Match[str] | None, lines: list[str]) -> Section:
    body = "\n".join(lines).strip()
    if heading is None:
        return Section(None, None, body)
    return Section(heading.group(0).strip(), heading.group(2).strip() or None, body)


def _next_fence(line: str, fence: str | None) -> str | None:
    """The open fence after ``line``: opened, closed, or unchanged."""
    match = _FENCE.match(line)
    if match is None:
        return fence
    marker = match.group(1)
    if fence is None:
        return marker
    closes = marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip()[len(marker):]
    return None if closes else fence

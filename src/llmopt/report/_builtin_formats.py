"""llmopt's own report formats: HTML, Markdown, JSON and JUnit, registered through the
``llmopt_report_formats`` hook by the first plugin like any project's format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ._format import ReportFormat
from ._junit import JUnitFormat


def _html(results: Mapping[str, Any]) -> str:
    from ._page import render_html

    return render_html(results)


def _markdown(results: Mapping[str, Any]) -> str:
    from ._markdown import render_markdown

    return render_markdown(results)


def _json(results: Mapping[str, Any]) -> str:
    return json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n"


@dataclass(frozen=True)
class TextFormat:
    """A format rendered to one text file."""

    name: str
    suffixes: tuple[str, ...]
    render: Callable[[Mapping[str, Any]], str]

    def write(self, results: Mapping[str, Any], path: Path) -> None:
        path.write_text(self.render(results), encoding="utf-8")


def builtin_report_formats() -> list[ReportFormat]:
    """The built-in formats: html, markdown, json and junit."""
    return [
        TextFormat("html", (".html", ".htm"), _html),
        TextFormat("markdown", (".md", ".markdown"), _markdown),
        TextFormat("json", (".json",), _json),
        JUnitFormat(),
    ]


def builtin_formats_by_name() -> dict[str, ReportFormat]:
    """The built-in formats by name (for rendering without a registry)."""
    return {f.name: f for f in builtin_report_formats()}

"""llmopt's own report formats: HTML, Markdown, JSON and JUnit, registered through the
``llmopt_report_formats`` hook by the first plugin like any project's format."""

from __future__ import annotations

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


@dataclass(frozen=True)
class JsonFormat:
    """The results JSON itself, streamed case by case as ``--llmopt-json`` writes it."""

    name: str = "json"
    suffixes: tuple[str, ...] = (".json",)

    def write(self, results: Mapping[str, Any], path: Path) -> None:
        from ._store import write_results

        write_results(results, path)


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
        JsonFormat(),
        JUnitFormat(),
    ]


def reads_record_views(fmt: ReportFormat) -> bool:
    """Whether ``fmt`` is a built-in format, which reads a variant's ``cases`` as any
    sequence (a plugin's gets plain lists: it may hand them to ``json.dumps``)."""
    return isinstance(fmt, (TextFormat, JsonFormat, JUnitFormat))


def builtin_formats_by_name() -> dict[str, ReportFormat]:
    """The built-in formats by name (for rendering without a registry)."""
    return {f.name: f for f in builtin_report_formats()}

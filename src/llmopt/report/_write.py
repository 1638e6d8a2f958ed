"""Writing the reports a run asks for: the format follows the file's suffix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import LLMOptError

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


class ReportError(LLMOptError):
    """A report cannot be written (unknown format, unreadable results)."""


def _html(doc: Mapping[str, Any]) -> str:
    from ._page import render_html

    return render_html(doc)


def _markdown(doc: Mapping[str, Any]) -> str:
    from ._markdown import render_markdown

    return render_markdown(doc)


def _json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    ".html": _html, ".htm": _html, ".md": _markdown, ".markdown": _markdown, ".json": _json,
}


def check_report_path(path: Path) -> None:
    """ReportError unless the suffix names a known format."""
    if path.suffix.lower() not in RENDERERS:
        known = ", ".join(sorted(RENDERERS))
        raise ReportError(f"{path}: unknown report format {path.suffix or '(no suffix)'!r}; use one of {known}")


def write_report(doc: Mapping[str, Any], path: Path) -> None:
    """Render ``doc`` in the format of ``path``'s suffix and write it."""
    check_report_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RENDERERS[path.suffix.lower()](doc), encoding="utf-8")


def append_step_summary(doc: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    target = environ.get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(_markdown(doc) + "\n")
    return path


def load_results(path: Path) -> dict[str, Any]:
    """A results JSON document, or ReportError naming the file and the problem."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or "scenarios" not in doc or not isinstance(doc["scenarios"], list):
        raise ReportError(f"{path}: not an llmopt results JSON (no 'scenarios' list)")
    return doc


def write_reports(doc: Mapping[str, Any], paths: list[Path]) -> list[str]:
    """Write every report asked for, and the job summary on GitHub Actions; the lines
    returned say where each went."""
    lines = []
    for path in paths:
        try:
            write_report(doc, path)
            lines.append(f"report: {path}")
        except OSError as exc:
            lines.append(f"report: could not write {path}: {exc.strerror or exc}")
    try:
        summary = append_step_summary(doc)
    except OSError as exc:
        return lines + [f"could not append to ${STEP_SUMMARY_ENV}: {exc.strerror or exc}"]
    if summary is not None:
        lines.append(f"summary appended to ${STEP_SUMMARY_ENV} ({summary})")
    return lines

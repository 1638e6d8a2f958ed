"""Writing the reports a run asks for, each in its registered format."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ._builtin_formats import reads_record_views
from ._format import ReportError, ReportFormat, ReportTarget, format_of
from ._store import plain

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def write_report(doc: Mapping[str, Any], path: Path, fmt: ReportFormat | None = None) -> None:
    """Write ``doc`` to ``path`` in ``fmt``, by default the built-in format of its suffix."""
    if fmt is None:
        from ._builtin_formats import builtin_formats_by_name

        fmt = format_of(path, builtin_formats_by_name())
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt.write(doc if reads_record_views(fmt) else plain(doc), path)


def append_step_summary(doc: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    from ._markdown import render_markdown

    target = environ.get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(render_markdown(doc) + "\n")
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


def write_reports(doc: Mapping[str, Any], targets: Sequence[ReportTarget]) -> list[str]:
    """Write every report asked for, and the job summary on GitHub Actions; the lines
    returned say where each went."""
    lines = []
    for target in targets:
        try:
            write_report(doc, target.path, target.format)
            lines.append(f"report: {target.path}")
        except OSError as exc:
            lines.append(f"report: could not write {target.path}: {exc.strerror or exc}")
        except Exception as exc:  # a plugin's format must not lose the run's other reports
            problem = f"{type(exc).__name__}: {exc}"
            lines.append(f"report: the {target.format.name} format failed on {target.path}: {problem}")
    try:
        summary = append_step_summary(doc)
    except OSError as exc:
        return lines + [f"could not append to ${STEP_SUMMARY_ENV}: {exc.strerror or exc}"]
    if summary is not None:
        lines.append(f"summary appended to ${STEP_SUMMARY_ENV} ({summary})")
    return lines

"""Reports of a run: the results JSON, the terminal summary, and the report formats
(HTML, Markdown, JSON, JUnit and any plugin's, through ``llmopt_report_formats``)."""

from ._builtin_formats import builtin_report_formats
from ._direction import fill_directions
from ._failure import describe, failure_text
from ._format import (
    ReportError,
    ReportFormat,
    ReportTarget,
    known_formats,
    report_target,
)
from ._junit import asked_limits, junit_properties
from ._progress import (
    Progress,
    ProgressFile,
    WorkerProgress,
    terminal_progress,
    worker_progress,
)
from ._store import FORMAT_VERSION, ResultsStore
from ._terminal import summary_lines
from ._write import append_step_summary, load_results, write_report, write_reports

__all__ = [
    "append_step_summary",
    "asked_limits",
    "builtin_report_formats",
    "describe",
    "failure_text",
    "fill_directions",
    "FORMAT_VERSION",
    "junit_properties",
    "known_formats",
    "load_results",
    "Progress",
    "ProgressFile",
    "ReportError",
    "ReportFormat",
    "ReportTarget",
    "report_target",
    "ResultsStore",
    "summary_lines",
    "terminal_progress",
    "WorkerProgress",
    "worker_progress",
    "write_report",
    "write_reports",
]

"""Reports of a run: the results JSON, the terminal summary, HTML and Markdown reports."""

from ._failure import describe, failure_text
from ._junit import add_junit_numbers
from ._progress import Progress, ProgressFile, WorkerProgress, terminal_progress, worker_progress
from ._store import FORMAT_VERSION, ResultsStore
from ._terminal import summary_lines
from ._write import ReportError, append_step_summary, check_report_path, load_results, write_report, write_reports

__all__ = [
    "add_junit_numbers",
    "append_step_summary",
    "check_report_path",
    "describe",
    "failure_text",
    "FORMAT_VERSION",
    "load_results",
    "Progress",
    "ProgressFile",
    "ReportError",
    "ResultsStore",
    "summary_lines",
    "terminal_progress",
    "WorkerProgress",
    "worker_progress",
    "write_report",
    "write_reports",
]

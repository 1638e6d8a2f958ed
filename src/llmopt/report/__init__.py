"""Reports of a run: the results JSON and the terminal summary."""

from ._failure import describe, failure_text
from ._store import FORMAT_VERSION, ResultsStore
from ._terminal import summary_lines

__all__ = ["describe", "failure_text", "FORMAT_VERSION", "ResultsStore", "summary_lines"]

"""Report formats: the protocol a format follows, and choosing one for a report path.

A format is registered through the ``llmopt_report_formats`` hook (the built-in ones
too). A report path picks its format by its suffix, or names it: ``FORMAT:PATH``
(``junit:out/llmopt.xml``), as pytest-cov's ``--cov-report`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from ..errors import LLMOptError

#: ``FORMAT:PATH``: a format name of two characters or more, so ``C:\\out.html`` is a path.
_NAMED = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.-]+):(?P<path>.+)$")


class ReportError(LLMOptError):
    """A report cannot be written (unknown format, unreadable results)."""


class ReportFormat(Protocol):
    """A report format, registered through ``llmopt_report_formats``.

    ``write`` renders a results document (the results JSON v1, as a mapping) to
    ``path``; the folder of ``path`` exists when it is called.
    """

    @property
    def name(self) -> str:
        """The format's name: ``--llmopt-report NAME:PATH``, ``llmopt report -o NAME:PATH``."""

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The file name endings that pick this format (``(".csv",)``)."""

    def write(self, results: Mapping[str, Any], path: Path) -> None:
        """Write the report of ``results`` to ``path``."""


@dataclass(frozen=True)
class ReportTarget:
    """A report to write: where, and in which format."""

    path: Path
    format: ReportFormat


def known_formats(formats: Mapping[str, ReportFormat]) -> str:
    """The registered formats for a message: ``html (.html, .htm), json (.json), ...``."""
    return ", ".join(f"{name} ({', '.join(formats[name].suffixes)})" for name in sorted(formats))


def named_format(name: str, formats: Mapping[str, ReportFormat]) -> ReportFormat:
    """The format called ``name``, or ReportError listing the known ones."""
    if name not in formats:
        raise ReportError(f"unknown report format {name!r}; use one of {known_formats(formats)}")
    return formats[name]


def format_of(path: Path, formats: Mapping[str, ReportFormat]) -> ReportFormat:
    """The format whose suffix ends ``path``'s name (the longest suffix wins)."""
    file_name = path.name.lower()
    matches = [(len(s), f) for f in formats.values() for s in f.suffixes if file_name.endswith(s.lower())]
    longest = max((length for length, _ in matches), default=0)
    chosen = {f.name: f for length, f in matches if length == longest}
    if not chosen:
        suffix = path.suffix or "(no suffix)"
        known = known_formats(formats)
        raise ReportError(f"{path}: unknown report format {suffix!r}; use one of {known}, or name one: FORMAT:PATH")
    if len(chosen) > 1:
        names = " and ".join(sorted(chosen))
        raise ReportError(f"{path}: the suffix is claimed by the report formats {names}; name one: FORMAT:PATH")
    return next(iter(chosen.values()))


def report_target(text: str, formats: Mapping[str, ReportFormat]) -> ReportTarget:
    """The target of a report option: ``FORMAT:PATH``, or a path whose suffix picks it."""
    named = _NAMED.match(text)
    if named is None:
        return ReportTarget(Path(text), format_of(Path(text), formats))
    try:
        found = named_format(named["name"], formats)
    except ReportError as exc:
        raise ReportError(f"{text}: {exc}") from None
    return ReportTarget(Path(named["path"]), found)

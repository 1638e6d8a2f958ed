"""One line for a case that failed: what failed, where, and for a plugin, its file and
line, never a traceback."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

from ..errors import LLMOptError, MetricError

__all__ = ["case_error", "metric_failure"]

_PACKAGE = Path(__file__).resolve().parents[1]
_LONGEST = 300


def case_error(exc: BaseException, where: str) -> str:
    """The one line a failed case carries, naming the spec, the variant and the case
    (``where``) once: llmopt's own errors say what failed (most already say where);
    any other exception (a bad row, a template that blew up) is named by its type."""
    if isinstance(exc, LLMOptError):
        text = _one_line(_text(exc).encode("utf-8", "backslashreplace").decode("utf-8"))
        return text if where in text else f"{where}: {text}"
    return f"{where}: {type(exc).__name__}: {_short(_text(exc))}"


def _one_line(text: str) -> str:
    """``text`` with its line breaks (and the indentation after them) as single spaces."""
    return re.sub(r"\s*\n\s*", " ", text.strip())


def metric_failure(key: str, exc: BaseException) -> MetricError:
    """A metric's own exception as a MetricError naming the metric and the plugin's
    file and line (the innermost frame outside llmopt)."""
    origin = _plugin_frame(exc)
    at = f" at {origin}" if origin else ""
    return MetricError(f"metric {key!r} raised {type(exc).__name__}{at}: {_short(_text(exc))}")


def _plugin_frame(exc: BaseException) -> str | None:
    frames = traceback.extract_tb(exc.__traceback__)
    outside = [f for f in frames if not _inside_llmopt(f.filename)]
    if not outside:
        return None
    frame = outside[-1]
    return f"{frame.filename}:{frame.lineno}"


def _inside_llmopt(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except ValueError:  # an integer too large to print
        return type(exc).__name__


def _short(text: str) -> str:
    """The first lines of a message, cut to a readable length (lone surrogates shown
    as escapes so the text can be written anywhere)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _LONGEST else text[: _LONGEST - 3] + "..."

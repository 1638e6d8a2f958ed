"""Reading a judge's reply: the last ``VERDICT:`` line wins, ``REASON:`` explains it.

A verdict that cannot be read (no verdict line, a value outside the scale, a
malformed fraction) raises MetricError: the case becomes an error, never a 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MetricError

#: ``VERDICT: 4`` with optional Markdown decoration (``**Verdict:** 4``, ``- VERDICT = 4``).
_VERDICT = re.compile(r"^[\s>*#\-_`]*verdict[\s*_`]*[:=][\s*_`]*(?P<value>.*?)[\s*_`.]*$", re.I | re.M)
_REASON = re.compile(r"^[\s>*#\-_`]*reason[\s*_`]*[:=][\s*_`]*(?P<value>.*?)\s*$", re.I | re.M)
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_SCALE_VALUE = re.compile(rf"^(?P<value>{_NUMBER})(?:\s*(?:/|out of)\s*(?P<top>{_NUMBER}))?$", re.I)
_FRACTION_VALUE = re.compile(r"^(?P<part>\d+)\s*(?:/|of|out of)\s*(?P<whole>\d+)$", re.I)
_SHOWN = 120


@dataclass(frozen=True)
class Verdict:
    """A read verdict: the text after ``VERDICT:``, its score in [0, 1], the reason."""

    verdict: str
    score: float
    reason: str


def verdict_text(reply: str, metric: str) -> str:
    """The value of the last verdict line of ``reply``."""
    found = [m.group("value").strip() for m in _VERDICT.finditer(reply)]
    if not found or not found[-1]:
        raise MetricError(f"metric '{metric}': unparseable verdict: no 'VERDICT:' line in the judge's reply {_shown(reply)}")
    return found[-1]


def reason_text(reply: str) -> str:
    """The last ``REASON:`` line, else the reply's first line (shortened)."""
    found = [m.group("value").strip() for m in _REASON.finditer(reply)]
    text = found[-1] if found and found[-1] else next((line.strip() for line in reply.splitlines() if line.strip()), "")
    return text if len(text) <= 300 else text[:299] + "…"


def read_scale(reply: str, metric: str, low: int, high: int) -> Verdict:
    """A verdict on the integer scale [low, high] (``4``, ``4/5``, ``4 out of 5``),
    normalized to [0, 1]."""
    text = verdict_text(reply, metric)
    match = _SCALE_VALUE.match(text)
    top = match.group("top") if match else None
    if match is None or (top is not None and float(top) != high):
        raise MetricError(f"metric '{metric}': unparseable verdict {text!r}: expected a number from {low} to {high}")
    value = float(match.group("value"))
    if not low <= value <= high:
        raise MetricError(f"metric '{metric}': verdict {text!r} is outside the scale {low} to {high}")
    return Verdict(text, (value - low) / (high - low), reason_text(reply))


def read_fraction(reply: str, metric: str) -> Verdict:
    """A verdict ``<part>/<whole>`` (supported claims of all claims) as part/whole;
    ``0/0`` (nothing to check) counts as 1.0."""
    text = verdict_text(reply, metric)
    match = _FRACTION_VALUE.match(text)
    if match is None:
        raise MetricError(f"metric '{metric}': unparseable verdict {text!r}: expected '<supported>/<claims>', e.g. 3/4")
    part, whole = int(match.group("part")), int(match.group("whole"))
    if part > whole:
        raise MetricError(f"metric '{metric}': verdict {text!r} counts more supported claims than claims")
    return Verdict(text, part / whole if whole else 1.0, reason_text(reply))


def _shown(reply: str) -> str:
    flat = " ".join(reply.split())
    return repr(flat if len(flat) <= _SHOWN else flat[: _SHOWN - 1] + "…")

"""How a failing assertion reads in pytest's output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from ..assertion import Verdict, WorstCase
    from ..spec import AssertionSpec

WIDTH = 38


def _cell(value: object, width: int = WIDTH) -> str:
    text = " ".join(str(value if value is not None else "-").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _output(output: str | None, retrieved: Sequence[str]) -> str | None:
    """The output, or for a retrieval-only variant (no output) what it retrieved."""
    if output is None and retrieved:
        return "retrieved: " + ", ".join(retrieved)
    return output


def _retrieved(output: str | None, retrieved: Sequence[str]) -> tuple[str, ...]:
    """The retrieved-documents cell of an answer (empty when the output already shows them)."""
    return (_cell(", ".join(retrieved) or "-", 44),) if output is not None else ("-",)


def _rows(a: "AssertionSpec", worst: Sequence["WorstCase"]) -> list[tuple[str, ...]]:
    answered = any(w.output is not None and w.retrieved for w in worst)
    if a.vs is None:
        head = ("case", "input", "expected", "output", "score") + (("retrieved",) if answered else ())
        return [head] + [
            (w.id, _cell(w.input), _cell(w.expected, 24), _cell(_output(w.output, w.retrieved)), _score(w.score))
            + (_retrieved(w.output, w.retrieved) if answered else ())
            for w in worst
        ]
    answered = answered or any(w.other_output is not None and w.other_retrieved for w in worst)
    head = ("case", "input", "expected", f"{a.variant} output", "score", f"{a.vs} output", "score")
    extra = (f"{a.variant} retrieved", f"{a.vs} retrieved") if answered else ()
    return [head + extra] + [
        (
            w.id,
            _cell(w.input, 30),
            _cell(w.expected, 20),
            _cell(_output(w.output, w.retrieved), 30),
            _score(w.score),
            _cell(_output(w.other_output, w.other_retrieved), 30),
            _score(w.other_score),
        )
        + ((*_retrieved(w.output, w.retrieved), *_retrieved(w.other_output, w.other_retrieved)) if answered else ())
        for w in worst
    ]


def _ci(verdict: "Verdict", signed: bool) -> str:
    interval = verdict.interval
    if interval is None or interval.low is None or interval.high is None:
        return ""
    form = "+.3f" if signed else ".3f"
    return f", {interval.confidence:.0%} CI [{interval.low:{form}}, {interval.high:{form}}]"


def _p(verdict: "Verdict") -> str:
    if verdict.p_value is None:
        return ""
    text = f", {verdict.test} p={verdict.p_value:.3g}"
    return text + (f", Holm-adjusted p={verdict.p_adjusted:.3g}" if verdict.p_adjusted is not None else "")


def describe(a: "AssertionSpec", verdict: "Verdict") -> str:
    """One line: what was observed against what was expected."""
    if (a.vs is not None or a.regression is not None) and verdict.delta is not None:
        other = a.vs or "stored"
        return (
            f"{a.metric_key}: {a.variant} - {other} = {verdict.delta:+.3f}"
            f" ({verdict.n} paired cases{_ci(verdict, True)}{_p(verdict)}); expected {a.variant} {verdict.expected}"
        )
    observed = "-" if verdict.observed is None else f"{verdict.observed:.3f}"
    return f"{a.metric_key} of {a.variant} = {observed} (n={verdict.n}{_ci(verdict, False)}); expected {verdict.expected}"


def power_text(verdict: "Verdict") -> str | None:
    """The power line of a comparison: its minimum detectable effect, and the cases an
    underpowered one would need."""
    found = verdict.power
    if found is None or found.mde is None:
        return None
    level = verdict.confidence or 0.95
    text = f"minimum detectable effect {found.mde:.3f} at n={verdict.n} ({level:.0%} confidence, 80% power)"
    if found.underpowered:
        text += f"; underpowered: the asked margin {found.margin:g} is below it, about {found.needed_n} cases needed"
    return text


def failure_text(a: "AssertionSpec", verdict: "Verdict", where: str) -> str:
    """The full text of a failed assertion item."""
    lines = [f"{where}: assertion failed", describe(a, verdict)]
    lines += [text for text in (power_text(verdict),) if text]
    if verdict.baseline and verdict.baseline.get("changed"):
        lines.append("identity changed since the stored baseline: " + "; ".join(verdict.baseline["changed"]))
    if verdict.worst:
        title = "worst cases:" if a.vs is None else f"cases where {a.variant} did not beat {a.vs}:"
        lines += ["", title, *_table(_rows(a, verdict.worst))]
    return "\n".join(lines)

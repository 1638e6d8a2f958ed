"""The per-case tables of the HTML report, with rows classed for the failure filter."""

from __future__ import annotations

from typing import Any, Mapping

from . import _doc as d
from ._html import MAX_FAILED_CASES, MAX_PASSING_CASES, _e, wide


def _retrieved(case: Mapping[str, Any]) -> str:
    hits = case.get("retrieved") or []
    parts = [f"{_e(h.get('doc_id', h.get('id')), 200)} <small>{_e(d.fmt(h.get('score')))}</small>" for h in hits]
    relevant = case.get("relevant")
    if relevant is not None:
        parts.append(f"<small>relevant: {_e(', '.join(map(str, relevant)), 300)}</small>")
    return "<br>".join(parts)


def _scores(case: Mapping[str, Any]) -> str:
    scores = case.get("scores") or {}
    lines = [f"{_e(k)}: {_e(d.fmt(v))}" for k, v in scores.items()]
    if case.get("consistency") is not None:
        lines.append(f"consistency: {_e(d.fmt(case['consistency']))}")
    for key, judge in (case.get("judges") or {}).items():
        if isinstance(judge, Mapping):
            lines.append(f"<small>judge {_e(key)}: {_e(judge.get('verdict'))} {_e(judge.get('reason'), 300)}</small>")
    return "<br>".join(lines)


def _output(case: Mapping[str, Any]) -> str:
    outputs = case.get("outputs")
    if outputs and len(outputs) > 1:
        return "".join(f"<pre>[{i + 1}] {_e(o)}</pre>" for i, o in enumerate(outputs))
    return f"<pre>{_e(case.get('output'))}</pre>"


def _row(case: Mapping[str, Any], unit: list[str], flaky: set[str]) -> str:
    state = "error" if case.get("error") else ("failed" if d.case_failed(case, unit) else "ok")
    extra = [f"{_e(d.fmt(case.get('latency_s'), 2))} s" if case.get("latency_s") is not None else "",
             "cached" if case.get("cached") else "", "flaky" if str(case.get("id")) in flaky else ""]
    error = f'<pre class="err">error: {_e(case["error"])}</pre>' if case.get("error") else ""
    cells = [
        f"{_e(case.get('id'))}<br><small>{' '.join(x for x in extra if x)}</small>",
        f"<pre>{_e(case.get('input'))}</pre>",
        f"<pre>{_e(case.get('expected'))}</pre>",
        _output(case) + error,
        _retrieved(case),
        _scores(case),
    ]
    return f'<tr class="case-{state}"><td class="id">' + "</td><td>".join(cells) + "</td></tr>"


def _omitted(failed: int, passing: int) -> str:
    parts = [f"{n} {what} cases not shown" for n, what in ((failed, "failed"), (passing, "passing")) if n > 0]
    return f"<p class='muted'>{'; '.join(parts)} (the results JSON has them all).</p>" if parts else ""


def checked_metrics(entry: Mapping[str, Any], name: str, variant: Mapping[str, Any]) -> list[str]:
    """The [0, 1] metrics an assertion checks on variant ``name``: a case below 1 on one
    of them failed. A variant no assertion checks (a baseline that others are compared
    with) has none, so only its errors are marked."""
    asserted = {a.get("metric") for a in entry.get("assertions", []) if a.get("variant") == name}
    return [key for key in d.unit_metrics(variant) if key in asserted]


def cases_section(entry: Mapping[str, Any]) -> str:
    """One collapsible table per variant; failures and errors first, passes capped."""
    parts = []
    for name, variant in entry["variants"].items():
        cases = variant.get("cases") or []
        unit = checked_metrics(entry, name, variant)
        flaky = set(map(str, variant.get("flaky") or []))
        bad = [c for c in cases if d.case_failed(c, unit)]
        good = [c for c in cases if not d.case_failed(c, unit)]
        shown = bad[:MAX_FAILED_CASES] + good[:MAX_PASSING_CASES]
        rows = "".join(_row(c, unit, flaky) for c in shown)
        note = _omitted(len(bad) - MAX_FAILED_CASES, len(good) - MAX_PASSING_CASES)
        summary = f"{_e(name)}: {len(cases)} cases, {len(bad)} failed or errors"
        if not any(a.get("variant") == name for a in entry.get("assertions", [])):
            summary = f"{_e(name)}: {len(cases)} cases, {len(bad)} errors (no assertion checks this variant)"
        head = "<tr><th>case</th><th>input</th><th>expected</th><th>output</th><th>retrieved (score)</th><th>scores</th></tr>"
        table = wide(f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>")
        parts.append(f"<details open><summary>{summary}</summary>{table}{note}</details>")
    return "".join(parts)

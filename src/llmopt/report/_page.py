"""Assembles the HTML report page from a results document."""

from __future__ import annotations

import re
from html import escape
from typing import Any, Mapping

from . import _doc as d
from ._html import CSS, _assertions, _delta_charts, _e, _identity, _metric_charts, _usage
from ._html_cases import cases_section
from ._search_html import CSS as SEARCH_CSS
from ._search_html import has_search, search_section

FILTER = (
    '<input type="radio" name="cases" id="show-all" checked hidden>'
    '<input type="radio" name="cases" id="show-failed" hidden>'
    '<input type="radio" name="cases" id="show-errors" hidden>'
    '<div class="filter">Cases: <label for="show-all">all</label>'
    '<label for="show-failed">failed and errors</label><label for="show-errors">errors only</label></div>'
)


def _anchor(entry: Mapping[str, Any], index: int) -> str:
    return f"s{index}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", str(entry.get("scenario")))


def _header(doc: Mapping[str, Any]) -> str:
    counts = d.outcome_counts(doc)
    usage = d.run_usage(doc)
    state = "failed" if counts["failed"] or counts["error"] else "passed"
    totals = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no assertions"
    spend = (
        f"spent ${d.fmt(usage.get('cost_usd', 0.0), 4)} on {int(usage.get('calls', 0))} calls; "
        f"{int(usage.get('cache_hits', 0))} answers from the cache"
    )
    when = f" · started {_e(doc['started'])}" if doc.get("started") else ""
    took = f" · {d.fmt(doc['duration_s'], 1)} s" if isinstance(doc.get("duration_s"), (int, float)) else ""
    links = " · ".join(
        f'<a href="#{_anchor(e, i)}">{_e(e.get("scenario"))}</a>' for i, e in enumerate(doc.get("scenarios", []))
    )
    return (
        f'<header><h1>llmopt report <span class="badge {state}">{state.upper()}</span></h1>'
        f"<p>{escape(totals)} · {escape(spend)}{when}{took}</p><p>{links}</p></header>"
    )


def _scenario(entry: Mapping[str, Any], index: int) -> str:
    base = d.baseline_of(entry)
    return (
        f'<section id="{_anchor(entry, index)}"><h2>{_e(entry.get("scenario"))} <small>{_e(entry.get("spec"))}</small></h2>'
        f"<h3>Assertions</h3>{_assertions(entry)}"
        f"<h3>Metrics by variant</h3>{_metric_charts(entry)}"
        f"<h3>Change against the baseline <small>({_e(base)})</small></h3>{_delta_charts(entry)}"
        f"{search_section(entry)}"
        f"<h3>Run identity</h3>{_identity(entry)}"
        f"<h3>Usage and cost</h3>{_usage(entry)}"
        f"<h3>Cases</h3>{cases_section(entry)}</section>"
    )


def render_html(doc: Mapping[str, Any]) -> str:
    """The whole report page for a results document."""
    scenarios = "".join(_scenario(e, i) for i, e in enumerate(doc.get("scenarios", [])))
    if not scenarios:
        scenarios = '<section><p class="muted">No scenario produced results.</p></section>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>llmopt report</title><style>{CSS}{SEARCH_CSS if has_search(doc) else ''}</style></head><body>"
        f"{FILTER}<main>{_header(doc)}{scenarios}</main></body></html>\n"
    )

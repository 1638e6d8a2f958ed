"""The HTML report: one self-contained page (inline CSS and SVG, no script, no fetch)."""

from __future__ import annotations

import json
from html import escape
from typing import Any, Mapping, Sequence

from . import _doc as d
from ._direction import scenario_direction
from ._svg import Bar, interval_chart

#: Cases shown per variant; failures and errors are always shown, passes up to this many.
MAX_PASSING_CASES = 500
#: Failed cases and errors shown per variant (the results JSON keeps them all).
MAX_FAILED_CASES = 2000
#: Characters of one text cell (input, expected, output) before it is cut.
MAX_CELL = 2000

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232b;background:#f6f7f9}
header,section{background:#fff;margin:12px auto;max-width:1200px;padding:12px 20px;border-radius:6px;box-shadow:0 1px 2px #0002}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;margin:6px 0}h3{font-size:15px;margin:14px 0 6px}
small,.muted{color:#5d6875}table{border-collapse:collapse;width:100%;margin:4px 0}
header,section,.filter{overflow-wrap:break-word}.wide{overflow-x:auto;max-width:100%}
th,td{border-bottom:1px solid #e3e6ea;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}
svg.chart{max-width:100%;height:auto}td.id{overflow-wrap:anywhere;min-width:7em}
th{background:#f0f2f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;white-space:nowrap;padding:0 6px;border-radius:3px;font-weight:600;font-size:12px;color:#fff}
.passed{background:#2e7d32}.failed{background:#c62828}.error{background:#ef6c00}.skipped{background:#757575}
.charts{display:flex;flex-wrap:wrap;gap:8px}.chart{background:#fcfcfd;border:1px solid #e3e6ea;border-radius:4px}
.chart .lbl,.chart .val,.chart .tickl,.chart .better{font-size:11px;fill:#33404d}
.chart .ttl{font-size:12px;font-weight:600;fill:#1d232b}
.chart .axis{stroke:#8a96a3}.chart .tick{stroke:#eceff2}.chart .zero{stroke:#5d6875;stroke-dasharray:3 3}
.chart .whisker{stroke:#33404d;stroke-width:1.5}.dot{fill:#1565c0}.dot.baseline{fill:#8a96a3}
.dot.up{fill:#2e7d32}.dot.down{fill:#c62828}
.err{color:#b34700}
pre{white-space:pre-wrap;word-break:break-word;overflow-wrap:anywhere;margin:0;
font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;
max-height:14em;overflow:auto}
tr.case-error td{background:#fff4e5}tr.case-failed td{background:#fdecea}
.filter{position:sticky;top:0;z-index:1;background:#fff;padding:6px 20px;max-width:1200px;margin:0 auto;
border-bottom:1px solid #e3e6ea}
.filter label{margin-right:14px;cursor:pointer}
#show-failed:checked~main tr.case-ok{display:none}
#show-errors:checked~main tr.case-ok,#show-errors:checked~main tr.case-failed{display:none}
#show-all:checked~.filter label[for=show-all],#show-failed:checked~.filter label[for=show-failed],
#show-errors:checked~.filter label[for=show-errors]{font-weight:700;text-decoration:underline}
details>summary{cursor:pointer;font-weight:600;margin:6px 0}
"""


def _e(value: Any, limit: int = MAX_CELL) -> str:
    """Escaped text of a value (JSON for structures), cut at ``limit`` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit} more characters)"
    return escape(text)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], num: Sequence[int] = ()) -> str:
    """A table of already-escaped cells; columns in ``num`` align right."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return wide(f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>")


def wide(table: str) -> str:
    """A table in a container of its own that scrolls sideways when the table is wider than
    the page, so the page itself never does."""
    return f'<div class="wide">{table}</div>'


def _badge(outcome: str) -> str:
    css = outcome if outcome in d.OUTCOME_ORDER else "error"
    return f'<span class="badge {css}">{escape(outcome.upper())}</span>'


def _assertions(entry: Mapping[str, Any]) -> str:
    rows = sorted(entry.get("assertions", []), key=lambda a: d.OUTCOME_ORDER.get(a.get("outcome", ""), 9))
    if not rows:
        return '<p class="muted">No assertions ran.</p>'
    head = ("result", "variant", "metric", "observed", "expected", "delta", "interval", "p-value", "n", "note")
    return _table(head, [_assertion_row(a) for a in rows], num=(3, 5, 6, 7, 8))


def _assertion_row(a: Mapping[str, Any]) -> list[str]:
    signed = a.get("delta") is not None
    p = d.shown_p(a)
    note = [a.get("kind") or "", a.get("test") or ""]
    if a.get("underpowered"):
        note.append(f"underpowered (needs n={a.get('needed_n') or '?'}, MDE {d.fmt(a.get('mde'))})")
    message = (a.get("message") or "").strip()
    return [
        _badge(a.get("outcome", "error")),
        _e(a.get("variant")),
        _e(a.get("metric")),
        _e(d.fmt(a.get("observed"))),
        _e(a.get("expected")),
        _e(d.fmt(a.get("delta"), signed=True)),
        _e(d.fmt_ci(d.assertion_ci(a), signed=signed)),
        _e(d.fmt_p(p)),
        _e(a.get("n", "")),
        _e(" · ".join(n for n in note if n)) + (f"<pre>{_e(message, 1500)}</pre>" if message else ""),
    ]


def _metric_charts(entry: Mapping[str, Any]) -> str:
    base = d.baseline_of(entry)
    charts = []
    for key in d.metric_keys(entry):
        bars = []
        for name, variant in entry["variants"].items():
            m = (variant.get("metrics") or {}).get(key)
            if not m or m.get("value") is None:
                continue
            low, high = (m.get("ci") or (None, None))[:2] if m.get("ci") else (None, None)
            bars.append(Bar(name, float(m["value"]), low, high, "baseline" if name == base else "variant"))
        higher = scenario_direction(entry, key)
        # A higher-is-better metric is most often a score in [0, 1]: its axis spans that.
        charts.append(interval_chart(f"{key} by variant", bars, higher_is_better=higher, unit=higher))
    return _charts(charts, "No metric values.")


def _delta_charts(entry: Mapping[str, Any]) -> str:
    base = d.baseline_of(entry)
    if base is None:
        return ""
    charts = []
    for key in d.metric_keys(entry):
        higher = scenario_direction(entry, key)
        bars = []
        for name in entry["variants"]:
            if name == base:
                continue
            value, ci = d.delta(entry, name, base, key)
            if value is None:
                continue
            better = (value > 0) if higher else (value < 0)
            low, high = (ci[0], ci[1]) if ci else (None, None)
            bars.append(Bar(name, value, low, high, "up" if better else ("down" if value else "variant")))
        charts.append(interval_chart(f"{key}: change vs {base}", bars, higher_is_better=higher, zero=True))
    return _charts(charts, f"No variant to compare with {base}.")


def _charts(charts: Sequence[str], empty: str) -> str:
    drawn = [c for c in charts if c]
    if not drawn:
        return f'<p class="muted">{escape(empty)}</p>'
    return '<div class="charts">' + "".join(drawn) + "</div>"


def _identity(entry: Mapping[str, Any]) -> str:
    keys: dict[str, None] = {}
    for variant in entry["variants"].values():
        keys.update(dict.fromkeys(variant.get("identity") or {}))
    head = ["variant", *keys, "recipes", "identity hash"]
    rows = []
    for name, variant in entry["variants"].items():
        ident = variant.get("identity") or {}
        cells = [_identity_cell(ident.get(k)) for k in keys]
        rows.append([_e(name), *cells, _e(", ".join(d.recipes_of(variant))), _e(variant.get("identity_hash"))])
    return _table(head, rows)


def _identity_cell(value: Any) -> str:
    """An identity value; a recipe reads as ``name@version`` (or inline) with its prompt
    folded away."""
    if not isinstance(value, Mapping) or "template" not in value:
        return _e(value, 300)
    label = f"{value['name']}@{value.get('version')}" if value.get("name") else "inline"
    prompt = "\n\n".join(str(value[k]) for k in ("system", "template") if value.get(k))
    return f"<details><summary>{_e(label)}</summary><pre>{_e(prompt)}</pre></details>"


def _usage(entry: Mapping[str, Any]) -> str:
    head = ("variant", "cases", "errors", "calls", "cache hits", "input tokens", "output tokens", "cost $",
            "saved by cache $", "judge cost $", "retrieval cost $", "seconds", "flaky cases")
    rows = []
    for name, v in entry["variants"].items():
        u, j, r = v.get("usage") or {}, v.get("judge_usage") or {}, v.get("retrieval_usage") or {}
        rows.append([
            _e(name), _e(v.get("n")), _e(v.get("errors")), _e(u.get("calls")), _e(u.get("cache_hits")),
            _e(u.get("input_tokens")), _e(u.get("output_tokens")), _e(d.fmt(u.get("cost_usd"), 4)),
            _e(d.fmt(u.get("cached_cost_usd"), 4)), _e(d.fmt(j.get("cost_usd"), 4) if j else "-"),
            _e(d.fmt(r.get("cost_usd"), 4) if r else "-"),
            _e(d.fmt(v.get("duration_s"), 2)), _e(", ".join(map(str, v.get("flaky") or [])) or "-"),
        ])
    return _table(head, rows, num=tuple(range(1, 12)))

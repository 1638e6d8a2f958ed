"""The Markdown summary: sized for a pull-request comment or a job summary."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from . import _doc as d
from ._direction import higher_is_better
from ._search import BIASED, Table, search_blocks, search_of

#: GitHub refuses comments over 65,536 characters; stay well below.
MAX_CHARS = 60_000
MAX_ASSERTIONS = 60
MAX_METRIC_ROWS = 40
ICONS = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️"}


def _cell(value: Any, width: int = 80) -> str:
    text = " ".join(str(value if value is not None else "-").split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return _escape(text)


def _escape(text: str) -> str:
    """Text that GitHub shows as written (no HTML, no table breaks)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _title(doc: Mapping[str, Any]) -> list[str]:
    counts = d.outcome_counts(doc)
    bad = counts["failed"] + counts["error"]
    parts = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no assertions"
    usage = d.run_usage(doc)
    spend = (
        f"spent ${usage.get('cost_usd', 0.0):.4f} on {int(usage.get('calls', 0))} calls, "
        f"{int(usage.get('cache_hits', 0))} answers from the cache"
    )
    return [f"## llmopt {'❌' if bad else '✅'} {parts}", "", spend, ""]


def _level(a: Mapping[str, Any]) -> float | None:
    """The level of the interval shown for an assertion (95% when the JSON does not say)."""
    if d.assertion_ci(a) is None:
        return None
    level = a.get("ci_level")
    return float(level) if isinstance(level, (int, float)) and not isinstance(level, bool) else 0.95


def _pct(level: float) -> str:
    return f"{level:.1%}".replace(".0%", "%")


def _labels(assertions: Sequence[Mapping[str, Any]]) -> tuple[str, str, bool, bool]:
    """The interval and p-value headers for these rows, and whether each cell must name
    its own level (levels differ) or say its p is Holm-adjusted (some are, some not)."""
    levels = {lv for a in assertions if (lv := _level(a)) is not None}
    adjusted = {a.get("p_adjusted") is not None for a in assertions if d.shown_p(a) is not None}
    ci_head = f"{_pct(levels.pop())} CI" if len(levels) == 1 else ("CI" if levels else "95% CI")
    p_head = "p (Holm-adjusted)" if adjusted == {True} else "p"
    return ci_head, p_head, len(levels) > 1, adjusted == {True, False}


def _assertion_row(scenario: str, a: Mapping[str, Any], per_level: bool = False, per_p: bool = False) -> list[Any]:
    signed = a.get("delta") is not None
    ci = d.fmt_ci(d.assertion_ci(a), signed=signed)
    if per_level and (level := _level(a)) is not None:
        ci = f"{_pct(level)} {ci}"
    p = d.fmt_p(d.shown_p(a))
    if per_p and a.get("p_adjusted") is not None:
        p += " (Holm)"
    return [
        f"{ICONS.get(a.get('outcome', ''), '')} {a.get('outcome', '')}", scenario, a.get("variant"),
        a.get("metric"), d.fmt(a.get("observed")), a.get("expected"), d.fmt(a.get("delta"), signed=True), ci, p,
    ]


def _assertion_lines(doc: Mapping[str, Any], budget: int) -> list[str]:
    """The assertion table, failures first, within ``budget`` characters; a note counts
    the rows left out and how many of them failed."""
    pairs = d.assertions_by_urgency(doc)
    if not pairs:
        return ["No assertions ran."]
    ci_head, p_head, per_level, per_p = _labels([a for _, a in pairs])
    head = ("result", "scenario", "variant", "metric", "observed", "expected", "delta", ci_head, p_head)
    lines = _table(head, [])
    used = sum(len(line) + 1 for line in lines)
    for shown, (scenario, a) in enumerate(pairs):
        line = _table(head, [_assertion_row(scenario, a, per_level, per_p)])[-1]
        if shown >= MAX_ASSERTIONS or used + len(line) + 1 > budget:
            rest = pairs[shown:]
            bad = sum(1 for _, x in rest if x.get("outcome") in ("failed", "error"))
            return lines + [f"\n… and {len(rest)} more assertions ({bad} failed or errors), in the HTML report"]
        lines.append(line)
        used += len(line) + 1
    return lines


def _change(entry: Mapping[str, Any], name: str, base: str | None, key: str) -> str:
    """The change of a metric from the baseline, and whether that is better or worse
    in the metric's direction (``higher_is_better``)."""
    if base is None or len(entry["variants"]) < 2:
        return "-"
    if name == base:
        return "(baseline)"
    value, _ = d.delta(entry, name, base, key)
    if value is None:
        return "-"
    better = value > 0 if higher_is_better(entry["variants"][name]["metrics"][key]) else value < 0
    return d.fmt(value, signed=True) + (" better" if better else " worse" if value else "")


def _metric_rows(entry: Mapping[str, Any]) -> list[list[str]]:
    base = d.baseline_of(entry)
    rows = []
    for name, variant in entry.get("variants", {}).items():
        for key, m in (variant.get("metrics") or {}).items():
            rows.append([name, key, d.fmt(m.get("value")), d.fmt_ci(m.get("ci")), _change(entry, name, base, key),
                         str(m.get("n", "-")), str(variant.get("errors", 0)),
                         f"{(variant.get('usage') or {}).get('cost_usd', 0.0):.4f}"])
    return rows


def _scenario_lines(entry: Mapping[str, Any]) -> list[str]:
    rows = _metric_rows(entry)
    head = ("variant", "metric", "value", "95% CI", "vs baseline", "n", "errors", "cost $")
    lines = [f"### {_escape(str(entry.get('scenario')))} (`{entry.get('spec')}`)", ""]
    lines += _table(head, rows[:MAX_METRIC_ROWS]) if rows else ["(no results)"]
    if len(rows) > MAX_METRIC_ROWS:
        lines.append(f"\n… {len(rows) - MAX_METRIC_ROWS} more rows in the HTML report")
    return lines + [""] + _search_lines(entry)


def _search_lines(entry: Mapping[str, Any]) -> list[str]:
    """The scenario's search (nothing without one): each line a paragraph, each table a table."""
    search = search_of(entry)
    if search is None:
        return []
    lines = ["#### Search", ""]
    for block in search_blocks(search):
        if isinstance(block, Table):
            more = [f"… {block.more} more candidates in the HTML report", ""] if block.more else []
            lines += _table(block.head, block.rows) + [""] + more
        else:
            lines += [f"_{_escape(block)}_" if block == BIASED else _escape(block), ""]
    return lines


def _scenario_urgency(entry: Mapping[str, Any]) -> int:
    return min((d.OUTCOME_ORDER.get(a.get("outcome", ""), 9) for a in entry.get("assertions", [])), default=9)


def render_markdown(doc: Mapping[str, Any], max_chars: int = MAX_CHARS) -> str:
    """The summary; scenarios with failures first; cut at ``max_chars`` with a note."""
    lines = _title(doc) + _assertion_lines(doc, max_chars // 2) + [""]
    text = "\n".join(lines)
    note = "\n_Summary cut to fit; the HTML report has everything._\n"
    for entry in sorted(doc.get("scenarios", []), key=_scenario_urgency):
        block = "\n".join(_scenario_lines(entry)) + "\n"
        if len(text) + len(block) + len(note) > max_chars:
            return text + note
        text += "\n" + block if not text.endswith("\n\n") else block
    return text

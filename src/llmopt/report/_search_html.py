"""The search section of the HTML report: the leaderboard drawn with its dev intervals
(labelled selection-biased, the winner marked), the effects as a forest plot against a
zero line, then the confirmation on the test split. Every user string is escaped."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from . import _doc as d
from . import _search as s
from ._html import _charts, _e, _table
from ._svg import Bar, interval_chart

#: Added to the page's style sheet only when a scenario has a search.
CSS = """
.dot.winner{fill:#ef6c00;stroke:#1d232b;stroke-width:1.5}.dot.dropped{fill:#c3cad2}
.badge.winner{background:#ef6c00}.badge.notrun{background:#757575}
"""


def _interval(ci: Any) -> tuple[float | None, float | None]:
    if not isinstance(ci, Sequence) or len(ci) != 2 or not all(isinstance(x, (int, float)) for x in ci):
        return None, None
    return float(ci[0]), float(ci[1])


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _candidate_bar(c: Mapping[str, Any], winner: str | None) -> Bar | None:
    last = s.last_round(c)
    if c.get("same_as") or last is None or not _number(last.get("value")):
        return None
    name = str(c.get("name"))
    kind = "winner" if name == winner else ("dropped" if c.get("dropped_in") is not None else "variant")
    return Bar(f"{name} (winner)" if kind == "winner" else name, float(last["value"]), *_interval(last.get("ci")), kind)


def leaderboard_chart(search: Mapping[str, Any]) -> str:
    """Each evaluated candidate's last-round value and interval, best first."""
    winner = s.winner_name(search)
    bars = [b for c in s.leaderboard(search) if (b := _candidate_bar(c, winner)) is not None]
    objective = search.get("objective") or {}
    title = f"dev {objective.get('key') or objective.get('metric') or 'objective'}: selection-biased intervals"
    up = s.higher(search)
    return interval_chart(title, bars, higher_is_better=up, unit=up)


def _effect_bar(e: Mapping[str, Any], up: bool) -> Bar | None:
    if not _number(e.get("delta")):
        return None
    value = float(e["delta"])
    better = value > 0 if up else value < 0
    axis = s.short(e.get("axis"), None).rsplit(".", 1)[-1]  # the level stays readable in a short label
    label = f"{axis}={s.short(e.get('level'), None)} vs {s.short(e.get('reference'), None)}"
    return Bar(label, value, *_interval(e.get("ci")), "up" if better else ("down" if value else "variant"))


def effects_chart(search: Mapping[str, Any]) -> str:
    """The forest plot: one row per axis level, its change from the axis's first level."""
    up = s.higher(search)
    effects = [e for e in search.get("effects") or [] if isinstance(e, Mapping)]
    bars = [b for e in effects if (b := _effect_bar(e, up)) is not None]
    return interval_chart("effect of each level vs its axis's first", bars, higher_is_better=up, zero=True)


def _leaderboard(search: Mapping[str, Any]) -> str:
    table = s.leaderboard_table(search, limit=None, width=None)
    winner = s.winner_name(search)
    rows = [[_e(cell) for cell in row] for row in table.rows]
    for row in rows:
        if row[0] == _e(winner):
            row[0] += ' <span class="badge winner">WINNER</span>'
    first = len(s.axes(search)) + 1
    return _table(table.head, rows, num=tuple(range(first, first + 4)))


def _plain(table: s.Table | None, num: Sequence[int]) -> str:
    return "" if table is None else _table(table.head, [[_e(c) for c in row] for row in table.rows], num=num)


def _winner(search: Mapping[str, Any]) -> str:
    line = s.winner_line(search)
    if line is None:
        return ""
    overrides = (search.get("winner") or {}).get("overrides")
    shown = json.dumps(overrides, indent=2, ensure_ascii=False, default=str) if overrides is not None else ""
    detail = f"<details><summary>overrides of the winner</summary><pre>{_e(shown)}</pre></details>" if shown else ""
    return f"<p><strong>{_e(line)}</strong></p>{_charts([curse_chart(search)], '')}{detail}"


def curse_chart(search: Mapping[str, Any]) -> str:
    """The winner's change on dev (where it was picked) above its change on the test split."""
    dev = (search.get("winner") or {}).get("dev") or {}
    conf = search.get("confirmation") or {}
    if not _number(dev.get("delta")) or not _number(conf.get("delta")):
        return ""
    up = s.higher(search)
    bars = [Bar(f"{name}: {label}", float(delta), *_interval(ci), "up" if (delta > 0) == up else "down")
            for name, label, delta, ci in (("dev", "selection-biased", dev["delta"], dev.get("delta_ci")),
                                           ("test", "confirmation", conf["delta"], conf.get("ci")))]
    title = f"winner {s.winner_name(search)} vs {conf.get('vs') or dev.get('vs')}: dev and test change"
    return interval_chart(title, bars, higher_is_better=up, zero=True)


def _outcome(outcome: Any) -> str:
    if outcome is None:
        return '<span class="badge notrun">NOT RUN</span>'
    css = outcome if outcome in d.OUTCOME_ORDER else "error"
    return f'<span class="badge {css}">{_e(str(outcome).upper())}</span>'


def _confirmation(search: Mapping[str, Any]) -> str:
    conf = search.get("confirmation")
    if not isinstance(conf, Mapping):
        return '<p class="muted">No confirmation on the test split.</p>'
    head = ("result", "variant", "vs", "metric", "n", "value", "vs value", "delta", "interval", "p-value", "test",
            "min_delta", "look on this test split")
    level = f"{s.level_text(conf)} " if conf.get("ci") else ""
    row = [
        _outcome(conf.get("outcome")), _e(conf.get("variant")), _e(conf.get("vs")), _e(conf.get("metric")),
        _e(d.fmt(conf.get("n"))), _e(d.fmt(conf.get("value"))), _e(d.fmt(conf.get("vs_value"))),
        _e(d.fmt(conf.get("delta"), signed=True)), _e(level + d.fmt_ci(conf.get("ci"), signed=True)),
        _e(d.fmt_p(conf.get("p"))), _e(conf.get("test")), _e(d.fmt(conf.get("min_delta"))), _e(d.fmt(conf.get("looks"))),
    ]
    note = f'<p class="muted">{_e(conf["note"])}</p>' if conf.get("note") else ""
    return _table(head, [row], num=(4, 5, 6, 7, 8, 9, 11, 12)) + note


def _paragraphs(lines: Sequence[str | None], css: str = "") -> str:
    shown = [_e(line) for line in lines if line]
    attr = f' class="{css}"' if css else ""
    return f"<p{attr}>{'<br>'.join(shown)}</p>" if shown else ""


def _generated(search: Mapping[str, Any]) -> str:
    """The generated candidates' counts, and every proposed instruction in full."""
    lines = s.generated_lines(search, None)
    if not lines:
        return ""
    proposals = ((search.get("generated") or {}).get("proposals") or {}).get("items") or []
    rows = []
    for p in proposals:
        if not isinstance(p, Mapping):
            continue
        state = f"dropped: {p['dropped']}" if p.get("dropped") else "kept"
        score = f", train {p['train_score']:.3f}" if isinstance(p.get("train_score"), (int, float)) else ""
        rows.append(f"<li><b>proposal {_e(p.get('number'))}</b> (round {_e(p.get('round'))}, {_e(state)}{_e(score)})"
                    f"<pre>{_e(p.get('text') or '')}</pre></li>")
    detail = f"<details><summary>the proposed instructions</summary><ul>{''.join(rows)}</ul></details>" if rows else ""
    return _paragraphs(lines) + detail


def _effects(search: Mapping[str, Any]) -> str:
    effects = s.effects_table(search, width=None)
    interactions = s.interactions_table(search, width=None)
    html = ""
    if effects is not None:
        chart = _charts([effects_chart(search)], "No effect to draw.")
        html += f"<h4>Effects (each level against its axis's first level)</h4>{chart}{_plain(effects, (2, 3, 4))}"
    if interactions is not None:
        html += f"<h4>Interactions (two-axis contrasts)</h4>{_plain(interactions, (2, 3, 4))}"
    return html


def search_section(entry: Mapping[str, Any]) -> str:
    """The scenario's search, or nothing when its spec has none."""
    search = s.search_of(entry)
    if search is None:
        return ""
    stopped = f"stopped: {search['stopped']}" if search.get("stopped") else None
    return (
        f"<h3>Search <small>{_e(s.heading(search))}</small></h3>"
        + _paragraphs([s.space_line(search, None), s.splits_line(search), s.rounds_line(search)])
        + _charts([leaderboard_chart(search)], "No candidate was evaluated.")
        + f'<p class="muted">{_e(s.BIASED)}</p>{_leaderboard(search)}{_winner(search)}{_generated(search)}{_effects(search)}'
        + f"<h4>Confirmation on the test split</h4>{_confirmation(search)}"
        + _paragraphs([s.usage_line(search)]) + _paragraphs([stopped], "err") + _paragraphs(s.notes(search), "muted")
    )


def has_search(doc: Mapping[str, Any]) -> bool:
    return any(s.search_of(entry) is not None for entry in doc.get("scenarios", []))

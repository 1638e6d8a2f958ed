"""The search section of a scenario (``scenarios[].search``) as every report shows it:
the leaderboard in the objective's direction, the effects, the winner beside its
confirmation, the usage. Format-neutral: lines of text and :class:`Table` values, which
the terminal, Markdown and HTML reports each draw their own way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from . import _doc as d

#: Leaderboard rows the terminal and Markdown show; the rest is counted ("... N more").
MAX_LEADERBOARD = 10
#: Characters of a level or note in a text cell (an instructions axis holds whole prompts).
MAX_TEXT = 40
#: What every format says of the dev intervals (the search writes the same note).
BIASED = "dev intervals are selection-biased: the winner was picked on them"


@dataclass(frozen=True)
class Table:
    """Rows of text cells under a header; ``more`` rows were left out."""

    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    more: int = 0


Block = str | Table


def search_of(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The scenario's search section, or None when its spec has no search."""
    search = entry.get("search")
    return search if isinstance(search, Mapping) else None


def higher(search: Mapping[str, Any]) -> bool:
    """Which way the objective is better (higher when the document does not say)."""
    value = (search.get("objective") or {}).get("higher_is_better")
    return value if isinstance(value, bool) else True


def short(value: Any, width: int | None = MAX_TEXT) -> str:
    """A value as one line of text, cut to ``width`` characters (None: whole)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def axes(search: Mapping[str, Any]) -> list[str]:
    return list((search.get("space") or {}).get("axes") or {})


def last_round(candidate: Mapping[str, Any]) -> Mapping[str, Any] | None:
    rounds = [r for r in candidate.get("rounds") or [] if isinstance(r, Mapping)]
    return rounds[-1] if rounds else None


def _own_key(candidate: Mapping[str, Any], up: bool) -> tuple[int, int, float]:
    """Candidates evaluated in later rounds first (their values come from more cases),
    then the best value in the objective's direction; unevaluated ones last."""
    last = last_round(candidate)
    if last is None or not isinstance(last.get("value"), (int, float)):
        return (1, 0, 0.0)
    value, number = float(last["value"]), last.get("round")
    return (0, -number if isinstance(number, int) else 0, -value if up else value)


def leaderboard(search: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The candidates best first; a ``same_as`` candidate right after the one it repeats."""
    candidates = [c for c in search.get("candidates") or [] if isinstance(c, Mapping)]
    index = {c.get("name"): i for i, c in enumerate(candidates)}
    up = higher(search)

    def key(item: tuple[int, Mapping[str, Any]]) -> tuple[Any, ...]:
        i, c = item
        ref = index.get(c.get("same_as"), i) if c.get("same_as") else i
        return (*_own_key(candidates[ref], up), ref, i)

    return [c for _, c in sorted(enumerate(candidates), key=key)]


def status(candidate: Mapping[str, Any], winner: str | None, width: int | None = MAX_TEXT) -> str:
    if candidate.get("error"):
        return "error: " + short(candidate["error"], width)
    if candidate.get("dropped_in") is not None:
        return f"dropped in round {candidate['dropped_in']}"
    return "kept (winner)" if candidate.get("name") == winner else "kept"


def winner_name(search: Mapping[str, Any]) -> str | None:
    name = (search.get("winner") or {}).get("name")
    return str(name) if name is not None else None


def _candidate_row(c: Mapping[str, Any], names: Sequence[str], winner: str | None, width: int | None) -> tuple[str, ...]:
    levels = [short((c.get("levels") or {}).get(axis, "-"), width) for axis in names]
    last = last_round(c)
    if c.get("same_as"):
        numbers = ["-", "-", f"= {c['same_as']}", "-"]
    elif last is None:
        numbers = ["-", "-", "-", "-"]
    else:
        numbers = [d.fmt(last.get("round")), d.fmt(last.get("n")), d.fmt(last.get("value")), d.fmt_ci(last.get("ci"))]
    return (str(c.get("name")), *levels, *numbers, status(c, winner, width))


def leaderboard_table(search: Mapping[str, Any], limit: int | None = MAX_LEADERBOARD, width: int | None = MAX_TEXT) -> Table:
    """The leaderboard, its first ``limit`` rows (None: all)."""
    names = axes(search)
    ranked = leaderboard(search)
    shown = ranked if limit is None else ranked[:limit]
    rows = tuple(_candidate_row(c, names, winner_name(search), width) for c in shown)
    head = ("candidate", *names, "round", "n", "value", "95% CI", "dropped / kept")
    return Table(head, rows, len(ranked) - len(shown))


def _reading(effect: Mapping[str, Any], up: bool) -> str:
    """Whether a level is better or worse than its reference: only when the interval
    leaves no doubt, in the objective's direction."""
    ci = d.assertion_ci(effect)
    if ci is None or ci[0] is None or ci[1] is None:
        return "-"
    if ci[0] > 0 or ci[1] < 0:
        return "better" if (ci[0] > 0) == up else "worse"
    return "unclear"


def effects_table(search: Mapping[str, Any], width: int | None = MAX_TEXT) -> Table | None:
    effects = [e for e in search.get("effects") or [] if isinstance(e, Mapping)]
    if not effects:
        return None
    up = higher(search)
    rows = tuple(
        (short(e.get("axis"), width), f"{short(e.get('level'), width)} vs {short(e.get('reference'), width)}",
         d.fmt(e.get("delta"), signed=True), d.fmt_ci(e.get("ci"), signed=True), d.fmt(e.get("n")), _reading(e, up))
        for e in effects
    )
    return Table(("axis", "level vs reference", "delta", "95% CI", "n", "change"), rows)


def interactions_table(search: Mapping[str, Any], width: int | None = MAX_TEXT) -> Table | None:
    found = [x for x in search.get("interactions") or [] if isinstance(x, Mapping)]
    if not found:
        return None
    rows = tuple(
        (" x ".join(short(a, width) for a in x.get("axes") or []), " x ".join(short(v, width) for v in x.get("levels") or []),
         d.fmt(x.get("delta"), signed=True), d.fmt_ci(x.get("ci"), signed=True), d.fmt(x.get("n")))
        for x in found
    )
    return Table(("axes", "levels", "interaction", "95% CI", "n"), rows)


def _params(strategy: Mapping[str, Any]) -> str:
    shown = [f"{k} {v}" for k, v in strategy.items() if k != "name" and v is not None]
    return f" ({', '.join(shown)})" if shown else ""


def heading(search: Mapping[str, Any]) -> str:
    """What was searched: the strategy, the objective and its direction, the start."""
    strategy = search.get("strategy") or {}
    objective = search.get("objective") or {}
    metric = objective.get("key") or objective.get("metric") or "?"
    start = f"from variant {search['from']}" if search.get("from") else "from the top level"
    way = "higher is better" if higher(search) else "lower is better"
    return f"{strategy.get('name', '?')}{_params(strategy)} on {metric} ({way}), {start}"


def space_line(search: Mapping[str, Any], width: int | None = MAX_TEXT) -> str:
    space = search.get("space") or {}
    parts = []
    for axis, values in (space.get("axes") or {}).items():
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        shown = [short(v, width) for v in values[:6]] + ([f"+{len(values) - 6} more"] if len(values) > 6 else [])
        parts.append(f"{axis} ({', '.join(shown)})")
    return f"space: {d.fmt(space.get('size'))} candidates: " + (" x ".join(parts) or "no axes")


def splits_line(search: Mapping[str, Any]) -> str | None:
    splits = search.get("splits")
    if not isinstance(splits, Mapping):
        return None
    sizes = [f"{name} {d.fmt((splits.get(name) or {}).get('n'))}" for name in ("dev", "test", "train") if name in splits]
    seed = f" (seed {splits['seed']})" if splits.get("seed") is not None else ""
    return "splits: " + ", ".join(sizes) + " cases" + seed


def rounds_line(search: Mapping[str, Any]) -> str | None:
    rounds = [r for r in search.get("rounds") or [] if isinstance(r, Mapping)]
    if len(rounds) < 2:
        return None
    parts = [f"round {r.get('round')}: {r.get('candidates')} candidates on {r.get('n')} cases, {r.get('kept')} kept"
             for r in rounds]
    return "; ".join(parts)


def _delta_text(delta: Any, ci: Any) -> str:
    text = d.fmt(delta, signed=True)
    shown = d.fmt_ci(ci, signed=True)
    return text if shown == "-" else f"{text} {shown}"


def winner_line(search: Mapping[str, Any]) -> str | None:
    """The winner's dev delta (selection-biased) beside the confirmation's test delta
    (the honest one): the winner's curse made visible."""
    winner = search.get("winner")
    if not isinstance(winner, Mapping):
        return None
    dev = winner.get("dev") or {}
    if dev.get("delta") is not None:
        line = f"winner {winner.get('name')}: dev {_delta_text(dev['delta'], dev.get('delta_ci'))}"
    else:
        line = f"winner {winner.get('name')}: dev {d.fmt(dev.get('value'))} {d.fmt_ci(dev.get('ci'))}"
    conf = search.get("confirmation") or {}
    if conf.get("delta") is None:
        return line + " vs test: not confirmed"
    line += f" vs test {_delta_text(conf['delta'], conf.get('ci'))}"
    if dev.get("delta") is None or dev.get("vs") in (None, conf.get("vs")):
        return line + f" (against {conf.get('vs') or dev.get('vs')})"
    return line + f" (dev against {dev.get('vs')}, test against {conf.get('vs')})"


def level_text(conf: Mapping[str, Any]) -> str:
    level = conf.get("confidence")
    level = level if isinstance(level, (int, float)) and not isinstance(level, bool) else 0.95
    return f"{level:.1%}".replace(".0%", "%")


def confirmation_line(search: Mapping[str, Any]) -> str | None:
    conf = search.get("confirmation")
    if not isinstance(conf, Mapping):
        return None
    outcome = conf.get("outcome")
    head = f"confirmation on the test split: {conf.get('variant', 'search')} vs {conf.get('vs', '-')}"
    if outcome is None:
        return head + ": not run"
    line = f"{head}, n={d.fmt(conf.get('n'))}: delta {d.fmt(conf.get('delta'), signed=True)}"
    line += f" {level_text(conf)} CI {d.fmt_ci(conf.get('ci'), signed=True)}, p={d.fmt_p(conf.get('p'))}"
    if conf.get("test"):
        line += f" ({conf['test']})"
    if conf.get("min_delta") is not None:
        line += f", asked min_delta {d.fmt(conf['min_delta'])}"
    return line + f": {str(outcome).upper()}; look {d.fmt(conf.get('looks'))} on this test split"


def usage_line(search: Mapping[str, Any]) -> str | None:
    usage = search.get("usage")
    if not isinstance(usage, Mapping):
        return None
    return (
        f"search usage: {d.fmt(usage.get('calls', 0))} calls, {d.fmt(usage.get('cache_hits', 0))} from the cache, "
        f"${d.fmt(usage.get('cost_usd', 0.0), 4)}, {d.fmt(usage.get('input_tokens', 0))} input and "
        f"{d.fmt(usage.get('output_tokens', 0))} output tokens"
    )


def generated_lines(search: Mapping[str, Any], width: int | None = MAX_TEXT) -> list[str]:
    """How many candidates the search generated and tried, the proposals kept and
    dropped, and what the winner was given (its instruction, its demonstrations)."""
    generated = search.get("generated")
    if not isinstance(generated, Mapping):
        return []
    line = (f"generated: {d.fmt(generated.get('candidates'))} candidates with generated parts, "
            f"{d.fmt(generated.get('tried'))} of them tried on dev")
    proposals = generated.get("proposals")
    lines = [line]
    if isinstance(proposals, Mapping):
        counts = proposals.get("counts") or {}
        text = (f"instructions: {d.fmt(counts.get('proposed'))} proposed, {d.fmt(counts.get('kept'))} kept, "
                f"{d.fmt(counts.get('dropped'))} dropped")
        reasons = [f"proposal {p.get('number')}: {p.get('dropped')}" for p in proposals.get("items") or []
                   if isinstance(p, Mapping) and p.get("dropped")]
        lines.append(text + (f" ({'; '.join(short(r, width) for r in reasons[:4])}"
                             f"{'; ...' if len(reasons) > 4 else ''})" if reasons else ""))
    lines += _winner_generated(search, width)
    return lines


def _winner_generated(search: Mapping[str, Any], width: int | None) -> list[str]:
    name = winner_name(search)
    run = next((c for c in search.get("candidates") or [] if isinstance(c, Mapping) and c.get("name") == name), None)
    made = run.get("generated") if isinstance(run, Mapping) else None
    if not isinstance(made, Mapping):
        return []
    out = []
    if made.get("instruction") is not None:
        out.append(f"winner's instruction (proposal {made.get('proposal')}): {short(made['instruction'], width)}")
    demos = made.get("demos")
    if isinstance(demos, Mapping):
        ids = made.get("demo_ids")
        which = f": {', '.join(map(str, ids))}" if ids else " (nearest training cases of each case)"
        out.append(f"winner's demonstrations: k={demos.get('k')} {demos.get('select')} from train{which}")
    return out


def notes(search: Mapping[str, Any]) -> list[str]:
    """The search's own notes (the selection-bias one is said by every format anyway)."""
    return [f"note: {n}" for n in search.get("notes") or [] if isinstance(n, str) and n != BIASED]


def search_blocks(search: Mapping[str, Any], limit: int | None = MAX_LEADERBOARD, width: int | None = MAX_TEXT) -> list[Block]:
    """The whole section in reading order, for the text formats."""
    conf = search.get("confirmation") or {}
    blocks: list[Block | None] = [
        heading(search), space_line(search, width), splits_line(search), rounds_line(search),
        leaderboard_table(search, limit, width), BIASED, winner_line(search), *generated_lines(search, width),
    ]
    if (effects := effects_table(search, width)) is not None:
        blocks += ["effects (each level against its axis's first level):", effects]
    if (interactions := interactions_table(search, width)) is not None:
        blocks += ["interactions (two-axis contrasts):", interactions]
    blocks += [confirmation_line(search), f"confirmation note: {conf['note']}" if conf.get("note") else None]
    blocks += [usage_line(search), f"stopped: {search['stopped']}" if search.get("stopped") else None, *notes(search)]
    return [b for b in blocks if b is not None]

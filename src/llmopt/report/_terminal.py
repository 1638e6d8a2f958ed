"""The terminal summary: scenario x variant x metric, with the verdicts."""

from __future__ import annotations

import os
import sys
import textwrap
from typing import Any, Iterable, Sequence

from ._search import Table, search_blocks, search_of

#: The narrowest width the summary is fitted to; below it lines wrap in the terminal.
MIN_WIDTH = 60
#: Where the check text sits in a row (it moves onto a line of its own when rows are too wide).
CHECK = 5

HEADER = ("variant", "metric", "value", "95% CI", "se", "check", "result", "n", "errors", "cache", "cost $")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _ci(metric: dict[str, Any] | None) -> str:
    if not metric or not metric.get("ci"):
        return "-"
    low, high = metric["ci"]
    return f"[{low:.3f}, {high:.3f}]"


def _check_text(assertion: dict[str, Any]) -> str:
    text = assertion["expected"]
    if assertion.get("delta") is not None:
        text += f" (delta {assertion['delta']:+.3f})"
        if assertion.get("ci") and None not in assertion["ci"]:
            low, high = assertion["ci"]
            level = assertion.get("ci_level")
            shown = f" {level:.1%}".replace(".0%", "%") if level not in (None, 0.95) else ""
            text += f" CI{shown} [{low:+.3f}, {high:+.3f}]"
        if assertion.get("p_value") is not None:
            text += f" p={assertion['p_value']:.3g}"
        if assertion.get("p_adjusted") is not None:
            text += f" p_holm={assertion['p_adjusted']:.3g}"
    return text


def _se(metric: dict[str, Any] | None) -> str:
    return "-" if not metric or metric.get("se") is None else f"{metric['se']:.3f}"


def scenario_rows(entry: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per (variant, metric, assertion); metrics without assertion shown once."""
    rows: list[tuple[str, ...]] = []
    for name, variant in entry["variants"].items():
        usage = variant.get("usage", {})
        cost = usage.get("cost_usd", 0.0) + usage.get("cached_cost_usd", 0.0)
        counts = (str(variant["n"]), str(variant["errors"]), str(usage.get("cache_hits", 0)), f"{cost:.4f}")
        checks = [a for a in entry["assertions"] if a["variant"] == name]
        for key, metric in variant["metrics"].items():
            mine = [a for a in checks if a["metric"] == key] or [None]
            for a in mine:
                check = _check_text(a) if a else ""
                result = a["outcome"].upper() if a else ""
                rows.append((name, key, _fmt(metric["value"]), _ci(metric), _se(metric), check, result, *counts))
        rows += [
            (name, a["metric"], "-", "-", "-", _check_text(a), a["outcome"].upper(), *counts)
            for a in checks
            if a["metric"] not in variant["metrics"]
        ]
    return rows


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _power_line(a: dict[str, Any]) -> str | None:
    if a.get("mde") is None:
        return None
    other = a.get("vs") or "stored"
    level = a.get("confidence") or 0.95
    line = f"  power: {a['variant']} vs {other} {a['metric']}: minimum detectable effect {a['mde']:.3f} at n={a['n']}"
    line += f" ({level:.0%} confidence, 80% power)"
    if a.get("underpowered"):
        margin = a.get("margin")
        asked = f"the asked margin {margin:g}" if margin is not None else "the asked margin"
        line += f"; UNDERPOWERED: {asked} is below it, about {a['needed_n']} cases needed"
    return line


def notes(entry: dict[str, Any]) -> list[str]:
    """Power of every comparison, flaky cases, identity changes since stored baselines."""
    lines = [line for a in entry["assertions"] if (line := _power_line(a))]
    for name, variant in entry["variants"].items():
        if variant.get("flaky"):
            shown = ", ".join(variant["flaky"][:10]) + (" ..." if len(variant["flaky"]) > 10 else "")
            lines.append(f"  flaky: {name}: {len(variant['flaky'])} cases scored differently across repeats: {shown}")
    changed = {a["variant"]: a["baseline"]["changed"] for a in entry["assertions"] if (a.get("baseline") or {}).get("changed")}
    lines += [f"  identity changed since the stored baseline: {name}: {'; '.join(c)}" for name, c in changed.items()]
    return lines


def search_lines(entry: dict[str, Any]) -> list[str]:
    """The scenario's search block (none without a search): leaderboard, winner,
    effects, confirmation; tables aligned like the variant table."""
    search = search_of(entry)
    if search is None:
        return []
    lines = ["  search:"]
    for block in search_blocks(search):
        if isinstance(block, Table):
            lines += ["    " + line for line in _table([block.head, *block.rows])]
            lines += [f"    ... {block.more} more"] if block.more else []
        else:
            lines.append("    " + block)
    return lines


def terminal_width() -> int | None:
    """The width of the terminal the summary is shown on, when it is known: ``COLUMNS``,
    else the size of a terminal on standard output; ``None`` for a pipe or a CI log,
    where the table is written whole."""
    columns = os.environ.get("COLUMNS", "").strip()
    # A pytest-xdist worker's environment says nothing of the user's terminal (the
    # controller prints the summary); its COLUMNS is not trusted.
    if columns.isdigit() and int(columns) > 0 and not os.environ.get("PYTEST_XDIST_WORKER"):
        return int(columns)
    stream = sys.__stdout__
    try:
        if stream is not None and stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        pass
    return None


def _wrap(line: str, width: int | None) -> list[str]:
    """``line`` cut at spaces to ``width``, continued four columns deeper; no word dropped."""
    if width is None or len(line) <= width:
        return [line]
    indent = " " * (len(line) - len(line.lstrip(" ")) + 4)
    return textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False) or [line]


def _scenario_table(rows: list[tuple[str, ...]], width: int | None) -> list[str]:
    """The table, whole when it fits ``width``; else each check on an indented line of its
    own under its row, and any line still too wide wrapped."""
    lines = ["  " + line for line in _table([HEADER, *rows])]
    if width is None or max(map(len, lines)) <= width:
        return lines
    narrow = [row[:CHECK] + row[CHECK + 1 :] for row in [HEADER, *rows]]
    out: list[str] = []
    for row, line in zip([HEADER, *rows], _table(narrow), strict=True):
        out += _wrap("  " + line, width)
        if row is not HEADER and row[CHECK]:
            out += _wrap(f"      check: {row[CHECK]}", width)
    return out


def summary_lines(doc: dict[str, Any], width: int | None = None) -> Iterable[str]:
    """The lines of the terminal summary for a results document, fitted to ``width``
    columns (by default the terminal's, see :func:`terminal_width`; at least
    :data:`MIN_WIDTH`). Every number stays; the reports keep the whole table."""
    width = width if width is not None else terminal_width()
    if width is not None:
        width = max(width, MIN_WIDTH)
    for entry in doc["scenarios"]:
        yield from _wrap(f"{entry['scenario']}  ({entry['spec']})", width)
        rows = scenario_rows(entry)
        if not rows:
            yield "  (no results)"
            yield from (part for line in search_lines(entry) for part in _wrap(line, width))
            continue
        yield from _scenario_table(rows, width)
        for line in notes(entry):
            yield from _wrap(line, width)
        for line in search_lines(entry):
            yield from _wrap(line, width)
        yield ""

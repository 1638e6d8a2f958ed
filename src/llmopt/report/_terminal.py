"""The terminal summary: scenario x variant x metric, with the verdicts."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

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


def summary_lines(doc: dict[str, Any]) -> Iterable[str]:
    """The lines of the terminal summary for a results document."""
    for entry in doc["scenarios"]:
        yield f"{entry['scenario']}  ({entry['spec']})"
        rows = scenario_rows(entry)
        if not rows:
            yield "  (no results)"
            continue
        for line in _table([HEADER, *rows]):
            yield "  " + line
        yield from notes(entry)
        yield ""

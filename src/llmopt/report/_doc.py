"""Reading a results document for the reports: lookups that tolerate missing fields.

Every report renders from the results JSON alone (``llmopt report`` re-renders an old
file), so nothing here needs the registry. Fields added by later versions are shown
when present and never required.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ._direction import higher_is_better

#: Outcomes in the order reports list them: what needs attention first.
OUTCOME_ORDER = {"failed": 0, "error": 1, "passed": 2, "skipped": 3}


def fmt(value: Any, digits: int = 3, signed: bool = False) -> str:
    """A number for people: fixed digits, ``-`` for a missing one."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_ci(ci: Sequence[float] | None, signed: bool = False) -> str:
    if not ci or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return "-"
    return f"[{fmt(ci[0], signed=signed)}, {fmt(ci[1], signed=signed)}]"


def fmt_p(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def shown_p(a: Mapping[str, Any]) -> Any:
    """The p-value a report shows for an assertion: the multiplicity-adjusted one when a
    correction applied, else the plain one (the JSON holds ``p_adjusted: null`` then)."""
    adjusted = a.get("p_adjusted")
    return adjusted if adjusted is not None else a.get("p_value")


def baseline_of(entry: Mapping[str, Any]) -> str | None:
    """The scenario's baseline: the variant its delta assertions compare against most
    often (the earliest written on a tie), else its first variant."""
    names = list(entry.get("variants", {}))
    counts: dict[str, int] = {}
    for a in entry.get("assertions", []):
        if a.get("vs") in names:
            counts[a["vs"]] = counts.get(a["vs"], 0) + 1
    if counts:
        return max(counts, key=lambda name: (counts[name], -names.index(name)))
    return names[0] if names else None


def metric_keys(entry: Mapping[str, Any]) -> list[str]:
    """Every metric measured on some variant of the scenario, in first-seen order."""
    keys: dict[str, None] = {}
    for variant in entry.get("variants", {}).values():
        keys.update(dict.fromkeys(variant.get("metrics", {})))
    return list(keys)


def assertions_by_urgency(doc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(scenario, assertion) pairs of the whole run, failures and errors first."""
    pairs = [(e["scenario"], a) for e in doc.get("scenarios", []) for a in e.get("assertions", [])]
    return sorted(pairs, key=lambda p: OUTCOME_ORDER.get(p[1].get("outcome", ""), 9))


def outcome_counts(doc: Mapping[str, Any]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for _, a in assertions_by_urgency(doc):
        counts[a.get("outcome", "error")] = counts.get(a.get("outcome", "error"), 0) + 1
    return counts


def run_usage(doc: Mapping[str, Any]) -> dict[str, float]:
    """The run's total usage: the top-level ``usage`` when present, else the sum over
    the variants of their own, their judges' and their retrieval's usage, and over the
    scenarios' searches (their calls on dev are no variant's)."""
    if isinstance(doc.get("usage"), Mapping):
        return dict(doc["usage"])
    total: dict[str, float] = {}
    for entry in doc.get("scenarios", []):
        kinds = ("usage", "judge_usage", "retrieval_usage", "demos_usage")
        parts = [v.get(part) for v in entry.get("variants", {}).values() for part in kinds]
        for used in [*parts, (entry.get("search") or {}).get("usage")]:
            for key, value in (used or {}).items():
                if isinstance(value, (int, float)):
                    total[key] = total.get(key, 0) + value
    return total


def assertion_ci(a: Mapping[str, Any]) -> Sequence[float] | None:
    ci = a.get("ci")
    return ci if isinstance(ci, Sequence) and len(ci) == 2 else None


def recipes_of(variant: Mapping[str, Any]) -> list[str]:
    """The recipe ``name@version`` values the variant's cases were rendered with."""
    seen: dict[str, None] = {}
    for case in variant.get("cases", []):
        recipe = case.get("recipe")
        if isinstance(recipe, Mapping) and recipe.get("name"):
            version = recipe.get("version")
            seen[f"{recipe['name']}@{version}" if version is not None else str(recipe["name"])] = None
    return list(seen)


def case_failed(case: Mapping[str, Any], unit_keys: Iterable[str]) -> bool:
    """True for a case with an error, or below 1 on a score that lies in [0, 1]."""
    if case.get("error"):
        return True
    scores = case.get("scores") or {}
    return any(isinstance(scores.get(k), (int, float)) and scores[k] < 1 for k in unit_keys)


def unit_metrics(variant: Mapping[str, Any]) -> list[str]:
    """Keys of higher-is-better metrics whose per-case scores are all in [0, 1] (so
    below 1 is a miss)."""
    metrics = variant.get("metrics") or {}
    keys: dict[str, bool] = {}
    for case in variant.get("cases", []):
        for key, value in (case.get("scores") or {}).items():
            ok = isinstance(value, (int, float)) and 0.0 <= value <= 1.0 and higher_is_better(metrics.get(key))
            keys[key] = keys.get(key, True) and ok
    return [k for k, ok in keys.items() if ok]


def delta(entry: Mapping[str, Any], variant: str, base: str, key: str) -> tuple[float | None, Sequence[float] | None]:
    """The change of ``key`` from ``base`` to ``variant``, with the interval of the
    matching delta assertion when one exists (else no interval)."""
    for a in entry.get("assertions", []):
        if a.get("variant") == variant and a.get("vs") == base and a.get("metric") == key and a.get("delta") is not None:
            return float(a["delta"]), assertion_ci(a)
    mine = entry["variants"][variant].get("metrics", {}).get(key)
    theirs = entry["variants"][base].get("metrics", {}).get(key)
    if not mine or not theirs or mine.get("value") is None or theirs.get("value") is None:
        return None, None
    return float(mine["value"]) - float(theirs["value"]), None

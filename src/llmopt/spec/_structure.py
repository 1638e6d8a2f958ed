"""What every variant needs after merging: a template, a provider, one source of cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ._merge import DEFAULT_VARIANT, SECTIONS, Merged
from ._problems import Issue, KeyPath, is_dirty


@dataclass(frozen=True)
class Finding:
    """A structural gap: where it is at the top level, and how to say it either way."""

    parent: KeyPath
    top_message: str
    merged_message: str


@dataclass(frozen=True)
class Check:
    """One structural check and the section it reads."""

    section: str
    find: Callable[[dict[str, Any]], "Finding | None"]


def _required(section: str, key: str) -> Check:
    def find(data: dict[str, Any]) -> Finding | None:
        part = data.get(section)
        if isinstance(part, dict) and part.get(key) is not None:
            return None
        parent, name = ((section,), key) if isinstance(part, dict) else ((), section)
        return Finding(parent, f"missing required key '{name}'", f"missing {section}.{key} after merge")

    return Check(section, find)


def _one_source(data: dict[str, Any]) -> Finding | None:
    task = data.get("task")
    given = [k for k in ("dataset", "cases") if isinstance(task, dict) and task.get(k) is not None]
    if len(given) == 1:
        return None
    if given:
        return Finding(("task",), "give either 'dataset' or 'cases', not both", "task has both 'dataset' and 'cases' after merge")
    return Finding(("task",), "missing 'dataset' or 'cases'", "task has neither 'dataset' nor 'cases' after merge")


def _one_training_source(data: dict[str, Any]) -> Finding | None:
    """Training cases from ``task.train`` or ``task.split``, not both."""
    task = data.get("task")
    if not isinstance(task, dict) or task.get("train") is None or task.get("split") is None:
        return None
    return Finding(("task",), "give either 'train' or 'split', not both", "task has both 'train' and 'split' after merge")


def _retrieval_only(data: dict[str, Any]) -> bool:
    return data.get("model") is None and isinstance(data.get("retrieval"), dict)


def _template(data: dict[str, Any]) -> Finding | None:
    """A recipe template, unless the variant is retrieval-only (it renders nothing)."""
    return None if _retrieval_only(data) else _required("recipe", "template").find(data)


def _model_or_retrieval(data: dict[str, Any]) -> Finding | None:
    """A model with a provider, or no model at all but retrieval (a retrieval-only variant)."""
    if _retrieval_only(data):
        return None
    if isinstance(data.get("model"), dict):
        return _required("model", "provider").find(data)
    merged = "has no model and no retrieval after merge: give a model (or retrieval, for a retrieval-only variant)"
    return Finding((), "missing required key 'model'", merged)


CHECKS = (
    Check("task", _one_source),
    Check("task", _one_training_source),
    Check("recipe", _template),
    Check("model", _model_or_retrieval),
)


def structure_issues(top: Merged, variants: Sequence[Merged], earlier: Sequence[Issue]) -> tuple[list[Issue], set[str]]:
    """Issues of the variants, and the names of the variants not fit to build.

    A check is skipped for a variant when an earlier problem touches the section it
    reads. A gap that the top level and every checked variant share is reported once
    at the top level; otherwise each variant with the gap is reported at its own key.
    """
    issues: list[Issue] = []
    unfit: set[str] = set()
    for check in CHECKS:
        checked = [m for m in variants if not _touched(earlier, m.name, [check.section])]
        failing = [m for m in checked if check.find(m.data) is not None]
        unfit.update(m.name for m in variants if m not in checked or m in failing)
        issues.extend(_report(check, top, checked, failing))
    unfit.update(m.name for m in variants if _touched(earlier, m.name, SECTIONS))
    return issues, unfit


def _touched(earlier: Sequence[Issue], name: str, sections: Sequence[str]) -> bool:
    return is_dirty(earlier, [p for s in sections for p in ((s,), ("variants", name, s))])


def _report(check: Check, top: Merged, checked: Sequence[Merged], failing: list[Merged]) -> list[Issue]:
    if not failing:
        return []
    shared = check.find(top.data)
    only_default = [m.name for m in checked] == [DEFAULT_VARIANT]
    if shared is not None and (only_default or len(failing) == len(checked)):
        return [Issue(shared.parent, shared.top_message)]
    found = [(m, check.find(m.data)) for m in failing]
    return [Issue(("variants", m.name), f.merged_message) for m, f in found if f is not None]

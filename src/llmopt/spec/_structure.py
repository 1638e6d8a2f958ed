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
    files = [k for k in ("dev_dataset", "test_dataset") if isinstance(task, dict) and task.get(k) is not None]
    if files:
        return _held_out_files(task, given, files)
    if len(given) == 1:
        return None
    if given:
        return Finding(("task",), "give either 'dataset' or 'cases', not both", "task has both 'dataset' and 'cases' after merge")
    return Finding(("task",), "missing 'dataset' or 'cases'", "task has neither 'dataset' nor 'cases' after merge")


def _held_out_files(task: Any, given: list[str], files: list[str]) -> Finding | None:
    """``dev_dataset`` and ``test_dataset`` come together, instead of a dataset or a split."""
    if len(files) == 1:
        other = "test_dataset" if files[0] == "dev_dataset" else "dev_dataset"
        return Finding(("task",), f"'{files[0]}' needs '{other}' too", f"task has {files[0]} without {other} after merge")
    clash = [*given, *(["split"] if task.get("split") is not None else [])]
    if clash:
        return Finding(
            ("task",),
            f"give either dev_dataset and test_dataset, or {clash[0]!r}, not both",
            f"task has dev_dataset/test_dataset and {clash[0]} after merge",
        )
    return None


def _one_training_source(data: dict[str, Any]) -> Finding | None:
    """Training cases from ``task.train`` or ``task.split``, not both."""
    task = data.get("task")
    if not isinstance(task, dict) or task.get("train") is None or task.get("split") is None:
        return None
    return Finding(("task",), "give either 'train' or 'split', not both", "task has both 'train' and 'split' after merge")


def _split_shares(data: dict[str, Any]) -> Finding | None:
    """A split's shares sum to at most 1, and dev and test come together."""
    task = data.get("task")
    split = task.get("split") if isinstance(task, dict) else None
    if not isinstance(split, dict):
        return None
    shares: dict[str, float] = {k: float(v) for k in ("train", "dev", "test") if isinstance(v := split.get(k), (int, float))}
    if not shares:
        return Finding(("task", "split"), "give the share of at least one part: train, dev or test", "task.split has no share")
    if ("dev" in shares) != ("test" in shares):
        given, missing = ("dev", "test") if "dev" in shares else ("test", "dev")
        return Finding(("task", "split"), f"'{given}' needs '{missing}' too (a search selects on dev and confirms on test)",
                       f"task.split has {given} without {missing} after merge")
    total = sum(shares.values())
    if total > 1 + 1e-9:
        parts = " + ".join(f"{k} {v:g}" for k, v in shares.items())
        return Finding(("task", "split"), f"the shares sum to {total:g} ({parts}); they must sum to at most 1",
                       f"task.split shares sum to {total:g} after merge")
    return None


def _retrieval_only(data: dict[str, Any]) -> bool:
    return data.get("model") is None and isinstance(data.get("retrieval"), dict)


def _template(data: dict[str, Any]) -> Finding | None:
    """A recipe template or ``use``, unless the variant is retrieval-only (it renders nothing)."""
    recipe = data.get("recipe")
    if isinstance(recipe, dict) and recipe.get("use") is not None:
        return _use_alone(recipe)
    if isinstance(recipe, dict) and recipe.get("fields") is not None:
        merged = "recipe has 'fields' but no 'use' after merge (set fields: null where the template is inline)"
        return Finding(("recipe",), "'fields' sets the fields of a recipe named by 'use'", merged)
    return None if _retrieval_only(data) else _required("recipe", "template").find(data)


def _use_alone(recipe: dict[str, Any]) -> Finding | None:
    inline = [key for key in ("system", "template") if recipe.get(key) is not None]
    if not inline:
        return None
    both = " and ".join(f"'{key}'" for key in inline)
    top = f"give either 'use' or an inline {both}, not both"
    merged = f"recipe has both 'use' and {both} after merge (set the one not wanted to null)"
    return Finding(("recipe",), top, merged)


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
    Check("task", _split_shares),
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

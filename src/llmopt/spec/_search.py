"""``search:``: its candidates, each validated like a variant, problems placed at the axes.

Every candidate is the ``from`` variant's overrides with one value of every axis merged
in. It is checked with the same schema, structure and world checks as a written variant
(on a copy of the document that holds it as a variant); a problem is then placed at the
axis value that caused it (``search.axes.retrieval.top_k[2]``), so a bad value is one
collection error naming the axis and the value, however many candidates it is part of.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ._merge import DEFAULT_VARIANT, merge_variant, top_level
from ._model import AssertionSpec, Axis, Candidate, ConfirmSpec, Location, ProposeSpec, SearchSpec, VariantSpec
from ._problems import Issue, KeyPath, is_dirty, key_text
from ._suggest import unknown_name

if TYPE_CHECKING:
    from ._merge import Merged

#: The variant name of the search's winner (reserved).
WINNER = "search"
#: The parts of a variant an axis may change (a candidate's cases are the dev split).
SEARCHABLE = ("recipe", "retrieval", "model")
#: Most candidates grid and halving evaluate (random samples ``trials`` of any space).
MAX_CANDIDATES = 1000
#: The axes whose values the search generates: demonstrations and proposed instructions.
GENERATED = ("demos", "instructions")
#: How the instructions axis names its levels.
AS_WRITTEN = "as written"

BuildVariant = Callable[["Merged"], tuple["VariantSpec | None", list[Issue]]]
Locate = Callable[[KeyPath], Location]


def search_issues_early(data: dict[str, Any], names: list[str] | None) -> list[Issue]:
    """Problems of ``search`` found without building anything: axis paths, ``from``,
    ``confirm.vs``, the reserved name, and the strategy's settings."""
    search = data.get("search")
    if not isinstance(search, dict) or names is None:
        return []
    issues: list[Issue] = []
    if WINNER in (data.get("variants") or {}):
        issues.append(Issue(("variants", WINNER), f"the variant name {WINNER!r} is reserved for the search's winner"))
    source = search.get("from")
    if source is not None and source not in names:
        issues.append(Issue(("search", "from"), unknown_name("variant", source, names), at_value=True))
    vs = (search.get("confirm") or {}).get("vs", "baseline")
    if vs not in names:
        where: KeyPath = ("search", "confirm", "vs") if "vs" in (search.get("confirm") or {}) else ("search",)
        hint = "" if "vs" in (search.get("confirm") or {}) else " (confirm.vs defaults to 'baseline')"
        issues.append(Issue(where, unknown_name("variant", vs, names) + hint, at_value=True))
    for axis, values in (search.get("axes") or {}).items() if isinstance(search.get("axes"), dict) else ():
        if str(axis) not in GENERATED or not isinstance(values, dict):
            issues += _axis_path_issues(str(axis))
    if search.get("strategy") == "random" and search.get("trials") is None:
        issues.append(Issue(("search",), "strategy random needs 'trials': how many candidates to sample"))
    return issues


def _axis_path_issues(axis: str) -> list[Issue]:
    parts = axis.split(".")
    if parts[0] in SEARCHABLE and all(parts):
        return []
    if parts[0] in ("task", "finetune"):
        why = f"'{parts[0]}' cannot be searched: a candidate's cases are the dev split; search recipe, retrieval or model"
    else:
        why = f"an axis is a path in {', '.join(SEARCHABLE)} (such as retrieval.top_k or model.params.temperature)"
    return [Issue(("search", "axes", axis), why)]


def build_search(
    data: dict[str, Any],
    variants: dict[str, VariantSpec],
    build: BuildVariant,
    locate: Locate,
    checks: Callable[[dict[str, Any], str], list[Issue]],
    skip: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[SearchSpec | None, list[Issue]]:
    """The search and the problems of its candidates (placed at the axis values);
    the axes in ``skip`` already have problems and are left out of the checks."""
    search = data["search"]
    source = search.get("from")
    start = variants.get(source or DEFAULT_VARIANT) if source is not None or DEFAULT_VARIANT in variants else None
    start_override = _start_override(data, source)
    axes = tuple(_axis(str(path), values, search) for path, values in search["axes"].items() if path not in skip)
    if not axes:
        return None, []
    levels = _levels(axes, search)
    if levels is None:
        size = _size(axes)
        return None, [Issue(("search", "axes"), f"the space has {size:,} candidates; grid and halving evaluate every one "
                            f"(at most {MAX_CANDIDATES:,}): use strategy random with trials, or fewer values")]
    issues = _held_out_issues(data, variants, source, start)
    candidates: list[Candidate] = []
    for number, choice in enumerate(levels, 1):
        name = f"c{number}"
        overrides = _overrides(start_override, axes, choice)
        variant, found = _candidate(data, name, overrides, build, checks)
        issues += _placed(found, name, axes, choice)
        if variant is not None:
            candidates.append(Candidate(name, _level_map(axes, choice), overrides, variant, proposal=_proposal(axes, choice)))
    issues += _generated_issues(axes, candidates)
    issues = list({(issue.path, issue.message): issue for issue in issues}.values())  # once per axis, not per candidate
    if issues or skip:
        return None, issues
    return _spec(search, axes, tuple(deduplicated(candidates)), locate, _size(axes)), []


def _generated_issues(axes: Sequence[Axis], candidates: Sequence[Candidate]) -> list[Issue]:
    """Proposals are written from training cases, so the task must have some."""
    if not any(axis.kind == "instructions" for axis in axes) or not candidates:
        return []
    task = candidates[0].variant.task
    if task.train is not None or (task.split is not None and task.split.train > 0):
        return []
    return [Issue(("search", "axes", "instructions"), "instructions are proposed from the training cases only: give "
                  "task.train (a dataset file) or a train share in task.split (train: 0.5, dev: 0.25, test: 0.25)")]


def _axis(path: str, values: Any, search: dict[str, Any]) -> Axis:
    """An axis as written, or a generated one (``demos``, ``instructions``) with its levels."""
    if path == "demos" and isinstance(values, dict):
        return Axis(path, _demo_levels(values, search.get("objective") or {}), kind="demos")
    if path == "instructions" and isinstance(values, dict):
        count = int(values.get("propose") or 0)
        return Axis(path, (AS_WRITTEN, *(f"proposal {i}" for i in range(1, count + 1))), kind="instructions")
    return Axis(path, tuple(values))


def _demo_levels(given: dict[str, Any], objective: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Every k with every select (k 0 once: no demonstrations); bootstrap judges
    answers by the search's objective unless the axis names its own metric."""
    common = {key: value for key, value in given.items() if key not in ("k", "select", "from")}
    levels: list[dict[str, Any]] = []
    for k in dict.fromkeys(int(k) for k in given.get("k") or ()):
        if k == 0:
            levels.append({"k": 0})
            continue
        for select in dict.fromkeys(given.get("select") or ["random"]):
            level = {"k": k, "select": select, **common}
            if select == "bootstrap" and "metric" not in level and objective.get("metric"):
                level["metric"] = objective["metric"]
                if objective.get("args"):
                    level["args"] = dict(objective["args"])
            if select != "bootstrap":
                for key in ("teacher", "metric", "args", "min_score"):
                    level.pop(key, None)
            if select != "similar":
                level.pop("retriever", None)
            levels.append(level)
    return tuple(levels)


def _proposal(axes: Sequence[Axis], choice: Sequence[int]) -> int | None:
    """The proposal number a candidate uses (None: the instruction as written)."""
    for axis, index in zip(axes, choice, strict=True):
        if axis.kind == "instructions" and index > 0:
            return index
    return None


def _start_override(data: dict[str, Any], source: str | None) -> dict[str, Any]:
    if source is None:
        return {}
    return copy.deepcopy((data.get("variants") or {}).get(source) or {})


def _held_out_issues(
    data: dict[str, Any], variants: dict[str, VariantSpec], source: str | None, start: VariantSpec | None
) -> list[Issue]:
    task = start.task if start is not None else next((v.task for v in variants.values()), None)
    if task is None or task.held_out:
        return []
    return [Issue(("search",), "a search needs held-out cases: give task.split {dev: 0.6, test: 0.4, seed: 7} "
                  "(shares of the dataset) or task.dev_dataset and task.test_dataset")]


def _size(axes: Sequence[Axis]) -> int:
    size = 1
    for axis in axes:
        size *= len(axis.values)
    return size


def _levels(axes: Sequence[Axis], search: dict[str, Any]) -> list[tuple[int, ...]] | None:
    """The candidates as value indexes per axis, in space order (a random search: its
    seeded sample of ``trials``); None when grid or halving would face too many."""
    size = _size(axes)
    if search.get("strategy") == "random":
        trials = min(int(search.get("trials") or size), size)
        picked = sorted(random.Random(int(search.get("seed") or 0)).sample(range(size), trials))
        return [_unrank(axes, rank) for rank in picked]
    if size > MAX_CANDIDATES:
        return None
    return list(itertools.product(*(range(len(axis.values)) for axis in axes)))


def _unrank(axes: Sequence[Axis], rank: int) -> tuple[int, ...]:
    out: list[int] = []
    for axis in reversed(axes):
        rank, index = divmod(rank, len(axis.values))
        out.append(index)
    return tuple(reversed(out))


def _overrides(start: dict[str, Any], axes: Sequence[Axis], choice: Sequence[int]) -> dict[str, Any]:
    out = copy.deepcopy(start)
    for axis, index in zip(axes, choice, strict=True):
        if axis.kind != "instructions":  # a proposal's text is set once it is written
            _set(out, axis.target.split("."), copy.deepcopy(axis.values[index]))
    return out


def _set(target: dict[str, Any], path: Sequence[str], value: Any) -> None:
    head, rest = path[0], path[1:]
    if rest:
        inner = target.get(head)
        if not isinstance(inner, dict):
            inner = target[head] = {}
        _set(inner, rest, value)
    elif isinstance(value, dict) and isinstance(target.get(head), dict):
        for key, item in value.items():
            _set(target[head], [key], item)
    else:
        target[head] = value


def _level_map(axes: Sequence[Axis], choice: Sequence[int]) -> dict[str, Any]:
    return {axis.path: axis.values[index] for axis, index in zip(axes, choice, strict=True)}


def _candidate(
    data: dict[str, Any], name: str, overrides: dict[str, Any], build: BuildVariant,
    checks: Callable[[dict[str, Any], str], list[Issue]],
) -> tuple[VariantSpec | None, list[Issue]]:
    """The candidate's variant (reading dev) and its problems, as a written variant's."""
    doc = {k: v for k, v in data.items() if k not in ("variants", "assertions", "search")}
    doc["variants"] = {name: overrides}
    issues = checks(doc, name)
    if is_dirty(issues, [("variants", name)]):
        return None, issues
    merged = merge_variant(doc, name)
    from ._structure import structure_issues

    found, unfit = structure_issues(top_level(doc), [merged], issues)
    issues += found
    if name in unfit:
        return None, issues
    variant, found = build(merged)
    issues += found
    if variant is None or found:
        return None, issues
    return replace(variant, task=replace(variant.task, part="dev"), location=None), issues


def _placed(issues: Sequence[Issue], name: str, axes: Sequence[Axis], choice: Sequence[int]) -> list[Issue]:
    """Each problem at the axis value that caused it; one that no single axis explains
    at ``search.axes``, naming the candidate and its levels."""
    out: list[Issue] = []
    for issue in issues:
        rest = issue.path[2:] if issue.path[:2] == ("variants", name) else None
        axis_at = _axis_of(rest, axes) if rest is not None else None
        if axis_at is not None and axes[axis_at].kind != "path":  # at the generated axis's own key
            axis = axes[axis_at]
            assert rest is not None
            below = tuple(rest[len(axis.target.split(".")):])
            out.append(Issue(("search", "axes", axis.path, *below), issue.message.replace(f"variants.{name}.", ""),
                             at_value=issue.at_value))
        elif axis_at is not None:
            axis = axes[axis_at]
            where = f" (at {key_text(rest)})" if rest and key_text(rest) != axis.path else ""
            path: KeyPath = ("search", "axes", axis.path, choice[axis_at])
            out.append(Issue(path, issue.message.replace(f"variants.{name}.", "") + where, at_value=True))
        else:
            levels = ", ".join(f"{a.path}={_shown(a.values[i])}" for a, i in zip(axes, choice, strict=True))
            message = issue.message.replace(f"variant '{name}'", "the candidate").replace(f"variants.{name}.", "")
            out.append(Issue(("search", "axes"), f"candidate {name} ({levels}): {message}"))
    return out


def _axis_of(rest: KeyPath, axes: Sequence[Axis]) -> int | None:
    for number, axis in enumerate(axes):
        path = tuple(axis.target.split("."))
        if rest[: len(path)] == path or (rest and path[: len(rest)] == rest):
            return number
    return None


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def deduplicated(candidates: Sequence[Candidate]) -> Iterator[Candidate]:
    """Candidates whose variants make the same requests are marked ``same_as`` the first
    (the proposal number counts until its text is known)."""
    seen: dict[str, str] = {}
    for candidate in candidates:
        candidate = replace(candidate, same_as=None)
        pending = candidate.proposal if candidate.variant.recipe.instruction is None else None
        plain = json.dumps([asdict(replace(candidate.variant, name="")), pending], sort_keys=True, default=str)
        first = seen.setdefault(plain, candidate.name)
        yield candidate if first == candidate.name else replace(candidate, same_as=first)


def _spec(search: dict[str, Any], axes: tuple[Axis, ...], candidates: tuple[Candidate, ...], locate: Locate,
          size: int) -> SearchSpec:
    objective = search.get("objective") or {}
    confirm = search.get("confirm") or {}
    budget = search.get("budget") or {}
    instructions = search["axes"].get("instructions")
    return SearchSpec(
        proposals=_propose_spec(instructions, locate) if any(a.kind == "instructions" for a in axes) else None,
        source=search.get("from"),
        axes=axes,
        metric=str(objective.get("metric") or ""),
        args=dict(objective.get("args") or {}),
        candidates=candidates,
        confirm=ConfirmSpec(
            vs=confirm.get("vs", "baseline"),
            min_delta=float(confirm.get("min_delta") or 0.0),
            confidence=float(confirm.get("confidence") or 0.95),
            fresh=bool(confirm.get("fresh", False)),
            location=locate(("search", "confirm")) if "confirm" in search else locate(("search",)),
        ),
        strategy=search.get("strategy") or "grid",
        trials=search.get("trials"),
        seed=int(search.get("seed") or 0),
        eta=int(search.get("eta") or 3),
        min_cases=int(search.get("min_cases") or 8),
        budget_calls=budget.get("calls"),
        budget_usd=float(budget["usd"]) if budget.get("usd") is not None else None,
        size=size,
        location=locate(("search",)),
    )


def _propose_spec(given: dict[str, Any], locate: Locate) -> ProposeSpec:
    from ._build import build_model

    proposer = given.get("proposer")
    return ProposeSpec(
        propose=int(given["propose"]),
        proposer=build_model(dict(proposer)) if proposer else None,
        sources=tuple(given.get("from") or ("task",)),
        seed=int(given.get("seed") or 0),
        sample=int(given.get("sample") or 8),
        location=locate(("search", "axes", "instructions")),
    )


def winner_placeholder(search: SearchSpec) -> VariantSpec:
    """Variant ``search`` as collection sees it: the first candidate's shape on the test
    split (for gate warnings and metric checks). The runner evaluates the real winner
    in its place, once the search has picked it; never this."""
    first = search.candidates[0].variant
    return replace(first, name=WINNER, task=replace(first.task, part=None), location=search.location)


def confirmation_assertion(search: SearchSpec, index: int) -> AssertionSpec:
    """The confirmation as a delta assertion on the test split: the winner against
    ``confirm.vs`` at ``confirm.confidence``, by ``confirm.min_delta``."""
    confirm = search.confirm
    return AssertionSpec(
        index=index,
        metric=search.metric,
        variant=WINNER,
        args=dict(search.args),
        vs=confirm.vs,
        min_delta=confirm.min_delta,
        confidence=confirm.confidence,
        location=confirm.location,
        key=search.metric_key,
        role="confirmation",
    )

"""Tests of the ``search`` section as the loader sees it (candidates, the placeholder
variant ``search``, the confirmation assertion, every problem placed at its key) and of
the seeded dev/test splits by case id (llmopt.dataset._split)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llmopt.dataset import load_cases
from llmopt.dataset._split import case_part
from llmopt.errors import SpecError
from llmopt.registry import Registry, create_registry
from llmopt.spec import Scenario, load_scenario


@pytest.fixture(scope="module")
def registry() -> Registry:
    return create_registry(entry_points=False)


def _cases(n: int, start: int = 0) -> str:
    return "".join(f'    - {{id: q{i}, question: "Q{i}", answer: "A{i}"}}\n' for i in range(start, start + n))


def spec(
    search: str,
    *,
    task_extra: str = "  split: {dev: 0.6, test: 0.4, seed: 7}\n",
    cases: str | None = None,
    variants: str = "  baseline: {}\n",
) -> str:
    """A spec over inline cases with ``search`` (the lines below ``search:``)."""
    body = f"  cases:\n{_cases(10) if cases is None else cases}" if cases != "" else ""
    return (
        "llmopt: 1\n"
        "scenario: s\n"
        "task:\n"
        "  id: id\n"
        "  expected: answer\n"
        f"{task_extra}"
        f"{body}"
        "recipe:\n"
        '  template: "{{ question }}"\n'
        "model:\n"
        "  provider: echo\n"
        f"variants:\n{variants}"
        f"search:\n{search}"
    )


GRID = "  axes:\n    model.params.temperature: [0, 0.5]\n  objective: {metric: exact_match}\n"


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load(path: Path, registry: Registry) -> Scenario:
    return load_scenario(path, registry, display_path=path.name)


def _problems(path: Path, registry: Registry) -> list[str]:
    with pytest.raises(SpecError) as info:
        _load(path, registry)
    return [str(p) for p in info.value.problems]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# -- splits -----------------------------------------------------------------------------


def test_case_part_is_disjoint_covering_and_near_the_shares() -> None:
    shares = {"dev": 0.5, "test": 0.3, "train": 0.2}
    ids = [f"case-{i}" for i in range(3000)]
    parts = {i: case_part(i, shares, 7) for i in ids}
    assert set(parts.values()) == {"train", "dev", "test"}  # every id has exactly one part
    counts = {p: sum(1 for v in parts.values() if v == p) for p in ("train", "dev", "test")}
    for part, share in shares.items():
        assert abs(counts[part] / len(ids) - share) < 0.04, counts
    assert all(case_part(i, shares, 7) == parts[i] for i in ids)  # a function of id and seed


def test_the_seed_changes_the_split_and_the_same_seed_repeats_it() -> None:
    shares = {"dev": 0.6, "test": 0.4}
    ids = [f"q{i}" for i in range(400)]
    a = [case_part(i, shares, 7) for i in ids]
    assert a == [case_part(i, shares, 7) for i in ids]
    b = [case_part(i, shares, 8) for i in ids]
    moved = sum(x != y for x, y in zip(a, b, strict=True))
    assert 100 < moved < 300  # about half the cases change part with another seed


def test_a_train_share_leaves_the_rest_for_evaluation() -> None:
    ids = [f"q{i}" for i in range(500)]
    parts = {case_part(i, {"train": 0.3}, 1) for i in ids}
    assert parts == {"train", "rest"}


def test_dev_and_test_of_a_spec_are_disjoint_and_cover_the_dataset(tmp_path: Path, registry: Registry) -> None:
    path = _write(tmp_path, spec(GRID, cases=_cases(60)))
    scenario = _load(path, registry)
    assert scenario.search is not None
    test = [c.id for c in load_cases(scenario.variants["baseline"].task, path)]
    dev = [c.id for c in load_cases(scenario.search.candidates[0].variant.task, path)]
    assert set(dev).isdisjoint(test)
    assert sorted(dev + test) == sorted(f"q{i}" for i in range(60))
    assert 24 <= len(dev) <= 48, (len(dev), len(test))
    again = _load(_write(tmp_path, spec(GRID, cases=_cases(60)), "again.yaml"), registry)
    assert [c.id for c in load_cases(again.variants["baseline"].task, path)] == test  # seeded: the same split again


def test_appending_and_reordering_cases_never_moves_an_old_case(tmp_path: Path, registry: Registry) -> None:
    def parts(cases: str, name: str) -> dict[str, str]:
        path = _write(tmp_path, spec(GRID, cases=cases), name)
        scenario = _load(path, registry)
        assert scenario.search is not None
        test = {c.id: "test" for c in load_cases(scenario.variants["baseline"].task, path)}
        dev = {c.id: "dev" for c in load_cases(scenario.search.candidates[0].variant.task, path)}
        assert not set(test) & set(dev)
        return test | dev

    old = parts(_cases(40), "old.yaml")
    grown = parts(_cases(40) + _cases(60, start=40), "grown.yaml")
    lines = (_cases(40) + _cases(60, start=40)).splitlines(keepends=True)
    random.Random(3).shuffle(lines)
    shuffled = parts("".join(lines), "shuffled.yaml")
    assert {i: grown[i] for i in old} == old
    assert {i: shuffled[i] for i in old} == old
    assert grown == shuffled
    assert len(grown) == 100


def test_dev_dataset_and_test_dataset_files_are_the_parts(tmp_path: Path, registry: Registry) -> None:
    for name, ids in (("dev.jsonl", ["d1", "d2", "d3"]), ("test.jsonl", ["t1", "t2"])):
        rows = [json.dumps({"id": i, "question": i, "answer": i}) for i in ids]
        (tmp_path / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    files = "  dev_dataset: dev.jsonl\n  test_dataset: test.jsonl\n"
    path = _write(tmp_path, spec(GRID, task_extra=files, cases=""))
    scenario = _load(path, registry)
    assert scenario.search is not None
    assert [c.id for c in load_cases(scenario.search.candidates[1].variant.task, path)] == ["d1", "d2", "d3"]
    assert [c.id for c in load_cases(scenario.variants["baseline"].task, path)] == ["t1", "t2"]
    assert [c.id for c in load_cases(scenario.variants["search"].task, path)] == ["t1", "t2"]


# -- what loading gives -----------------------------------------------------------------


def test_loading_gives_candidates_the_placeholder_and_the_confirmation(tmp_path: Path, registry: Registry) -> None:
    search = (
        "  axes:\n"
        "    model.params.temperature: [0, 0.5]\n"
        '    recipe.template: ["{{ question }}", "Q: {{ question }}", "{{ question }}?"]\n'
        "  objective: {metric: exact_match}\n"
        "  strategy: halving\n"
        "  confirm: {vs: baseline, min_delta: 0.05, confidence: 0.9}\n"
    )
    scenario = _load(_write(tmp_path, spec(search)), registry)
    found = scenario.search
    assert found is not None
    assert [c.name for c in found.candidates] == [f"c{i}" for i in range(1, 7)]
    assert found.size == 6 and found.strategy == "halving" and found.eta == 3
    c5 = found.candidates[4]
    assert dict(c5.levels) == {"model.params.temperature": 0.5, "recipe.template": "Q: {{ question }}"}
    assert c5.overrides == {"model": {"params": {"temperature": 0.5}}, "recipe": {"template": "Q: {{ question }}"}}
    assert c5.variant.recipe is not None and c5.variant.recipe.template == "Q: {{ question }}"
    assert c5.variant.model is not None and c5.variant.model.params["temperature"] == 0.5
    assert {c.variant.task.part for c in found.candidates} == {"dev"}
    assert all(c.same_as is None for c in found.candidates)
    placeholder = scenario.variants["search"]
    assert placeholder.task.part != "dev"
    (confirmation,) = [a for a in scenario.assertions if a.role == "confirmation"]
    assert (confirmation.variant, confirmation.vs, confirmation.metric) == ("search", "baseline", "exact_match")
    assert confirmation.min_delta == 0.05 and confirmation.confidence == 0.9


def test_candidates_start_from_the_from_variant(tmp_path: Path, registry: Registry) -> None:
    variants = '  baseline: {}\n  rag: {recipe: {system: "Be brief."}, model: {params: {max_tokens: 9}}}\n'
    search = "  from: rag\n" + GRID
    scenario = _load(_write(tmp_path, spec(search, variants=variants)), registry)
    assert scenario.search is not None and scenario.search.source == "rag"
    for candidate in scenario.search.candidates:
        assert candidate.variant.recipe is not None and candidate.variant.recipe.system == "Be brief."
        assert candidate.variant.model is not None and candidate.variant.model.params["max_tokens"] == 9
    assert [c.variant.model.params["temperature"] for c in scenario.search.candidates if c.variant.model] == [0, 0.5]


def test_random_samples_trials_candidates_seeded(tmp_path: Path, registry: Registry) -> None:
    search = (
        "  axes:\n    model.params.temperature: [0, 0.1, 0.2, 0.3, 0.4]\n    model.params.top_p: [0.5, 0.7, 0.9, 1.0]\n"
        "  objective: {metric: exact_match}\n  strategy: random\n  trials: 5\n  seed: 3\n"
    )
    first = _load(_write(tmp_path, spec(search)), registry).search
    again = _load(_write(tmp_path, spec(search), "again.yaml"), registry).search
    other = _load(_write(tmp_path, spec(search.replace("seed: 3", "seed: 4")), "other.yaml"), registry).search
    assert first is not None and again is not None and other is not None
    assert len(first.candidates) == 5 and first.size == 20
    levels = [dict(c.levels) for c in first.candidates]
    assert levels == [dict(c.levels) for c in again.candidates]
    assert levels != [dict(c.levels) for c in other.candidates]
    assert len({json.dumps(lv, sort_keys=True) for lv in levels}) == 5


def test_axis_values_making_identical_variants_are_marked_same_as(tmp_path: Path, registry: Registry) -> None:
    # the second value only restates what the top level already says
    search = (
        "  axes:\n"
        '    recipe: [{template: "Q: {{ question }}"}, {template: "{{ question }}"}, {system: null}]\n'
        "  objective: {metric: exact_match}\n"
    )
    scenario = _load(_write(tmp_path, spec(search)), registry)
    assert scenario.search is not None
    assert [c.same_as for c in scenario.search.candidates] == [None, None, "c2"]


# -- every bad key is a problem at its file, line and key -------------------------------

PROVIDER = "  axes:\n    model.provider: [echo, nosuch]\n  objective: {metric: exact_match}\n"

BAD = {
    "unknown provider value": (
        PROVIDER,
        "nosuch",
        "search.axes.model.provider[1]: unknown provider 'nosuch' (known: ",
    ),
    "a task axis": (
        "  axes:\n    task.sample: [1, 2]\n  objective: {metric: exact_match}\n",
        "task.sample",
        "search.axes.task.sample: 'task' cannot be searched",
    ),
    "unknown from": (
        "  from: nope\n" + GRID,
        "from: nope",
        "search.from: unknown variant 'nope' (known: baseline)",
    ),
    "unknown confirm.vs": (
        GRID + "  confirm: {vs: nope}\n",
        "confirm:",
        "search.confirm.vs: unknown variant 'nope' (known: baseline)",
    ),
    "random without trials": (
        GRID + "  strategy: random\n",
        "search:",
        "search: strategy random needs 'trials'",
    ),
    "unknown strategy": (
        GRID + "  strategy: sideways\n",
        "strategy:",
        "search.strategy: must be one of 'grid', 'random', 'halving', got 'sideways'",
    ),
    "misspelt key": (
        GRID + "  strategi: grid\n",
        "strategi",
        "search.strategi: unknown key 'strategi' (did you mean 'strategy'?)",
    ),
    "eta below 2": (
        GRID + "  strategy: halving\n  eta: 1\n",
        "eta:",
        "search.eta: must be >= 2, got 1",
    ),
    "negative call budget": (
        GRID + "  budget: {calls: -1}\n",
        "budget:",
        "search.budget.calls: must be >= 1, got -1",
    ),
    "empty axis": (
        "  axes:\n    model.params.temperature: []\n  objective: {metric: exact_match}\n",
        "model.params.temperature",
        "search.axes.model.params.temperature: must hold at least 1 item",
    ),
    "unknown retriever value": (
        "  axes:\n    retrieval.retriever: [nosuch]\n  objective: {metric: exact_match}\n",
        "retrieval.retriever",
        "search.axes.retrieval.retriever[0]: unknown retriever 'nosuch' (known: ",
    ),
    "confidence of 2": (
        GRID + "  confirm: {vs: baseline, confidence: 2}\n",
        "confirm:",
        "search.confirm.confidence: must be < 1, got 2",
    ),
    "unknown objective metric": (
        "  axes:\n    model.params.temperature: [0, 0.5]\n  objective: {metric: exact_mtch}\n",
        "objective:",
        "search.objective.metric: unknown metric 'exact_mtch' (did you mean 'exact_match'?",
    ),
    "objective without its metric's argument": (
        "  axes:\n    model.params.temperature: [0, 0.5]\n  objective: {metric: regex}\n",
        "objective:",
        "search.objective.args: metric 'regex' needs argument 'pattern'",
    ),
    "no objective": (
        "  axes:\n    model.params.temperature: [0, 0.5]\n",
        "search:",
        "search: missing required key 'objective'",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_search_key_is_one_problem_at_its_line_and_key(tmp_path: Path, registry: Registry, name: str) -> None:
    search, needle, expected = BAD[name]
    text = spec(search)
    problems = _problems(_write(tmp_path, text), registry)
    line = _line_of(text, needle)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.startswith(f"spec.yaml:{line}:"), problem
    assert expected in problem, problem
    assert "internal error" not in problem and "KeyError" not in problem, problem


def test_the_bad_axis_value_is_placed_at_its_column(tmp_path: Path, registry: Registry) -> None:
    text = spec(PROVIDER)
    line = _line_of(text, "nosuch")
    column = text.splitlines()[line - 1].index("nosuch") + 1
    (problem,) = _problems(_write(tmp_path, text), registry)
    assert problem.startswith(f"spec.yaml:{line}:{column}: search.axes.model.provider[1]: unknown provider 'nosuch'")


@pytest.mark.parametrize(
    ("name", "task_extra", "variants", "expected"),
    [
        ("reserved name", None, "  baseline: {}\n  search: {}\n",
         "variants.search: the variant name 'search' is reserved for the search's winner"),
        ("no held-out split", "", None, "search: a search needs held-out cases"),
        ("shares above 1", "  split: {dev: 0.8, test: 0.4, seed: 7}\n", None,
         "task.split: the shares sum to 1.2 (dev 0.8 + test 0.4); they must sum to at most 1"),
        ("dev file without test file", "  dev_dataset: dev.jsonl\n", None, "task: 'dev_dataset' needs 'test_dataset' too"),
    ],
)
def test_a_spec_the_search_cannot_run_on_is_refused(
    tmp_path: Path, registry: Registry, name: str, task_extra: str | None, variants: str | None, expected: str
) -> None:
    (tmp_path / "dev.jsonl").write_text('{"id": "d", "question": "x", "answer": "x"}\n', encoding="utf-8")
    kwargs: dict[str, str] = {}
    if task_extra is not None:
        kwargs["task_extra"] = task_extra
    if variants is not None:
        kwargs["variants"] = variants
    if name == "dev file without test file":
        kwargs["cases"] = ""
    problems = _problems(_write(tmp_path, spec(GRID, **kwargs)), registry)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("spec.yaml:") and p[len("spec.yaml:")].isdigit() for p in problems), problems


def test_problems_of_the_axes_and_the_rest_of_the_spec_are_listed_at_once(tmp_path: Path, registry: Registry) -> None:
    search = "  axes:\n    model.provider: [echo, nosuch]\n    task.sample: [1]\n  objective: {metric: exact_match}\n"
    text = spec(search) + "assertions:\n  - {metric: nope, variant: baseline, min: 1}\n"
    problems = _problems(_write(tmp_path, text), registry)
    assert [p.split(": ")[1] for p in problems] == ["search.axes.model.provider[1]", "search.axes.task.sample", "assertions[0].metric"]


def test_a_bad_axis_value_is_listed_beside_other_search_problems(tmp_path: Path, registry: Registry) -> None:
    """Design rule 4: all problems of a file at once. An unknown ``confirm.vs`` (or any
    other search key's problem) must not hide the bad axis value, nor the objective's
    unknown metric."""
    search = "  axes:\n    model.provider: [echo, nosuch]\n  objective: {metric: exact_mtch}\n  confirm: {vs: nope}\n"
    problems = _problems(_write(tmp_path, spec(search)), registry)
    keys = sorted(p.split(": ")[1] for p in problems)
    assert keys == ["search.axes.model.provider[1]", "search.confirm.vs", "search.objective.metric"], problems

"""Tests of the optimization search (llmopt.search) end to end: the engine on dev only
(grid, halving, the budget, the cache, identical candidates), and the pytest items with
the one confirmation on the locked test split (what reaches test, the null space, the
looks ledger, xdist).

Every model is a ``python`` provider over a synthetic space: a candidate's answer to a
case is right when a hash of (case id, ``salt``, ``world``) falls below its
``quality``, so every score is deterministic and the true quality of each candidate is
known. The function appends each request (case id, params) to ``calls.jsonl`` beside
it, so a test sees exactly what was asked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmopt.dataset import load_cases
from llmopt.engine.cache import ResponseCache
from llmopt.engine.runner import Runner
from llmopt.registry import Registry, create_registry
from llmopt.search import SearchOutcome, run_search, winner_variant
from llmopt.spec import Scenario, load_scenario

if TYPE_CHECKING:
    from conftest import WriteFile

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

AGENT = """\
import hashlib
import json
import os

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")


def answer(case, params):
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({"id": case["id"], "params": params}, sort_keys=True) + "\\n")
    key = f"{case['id']}|{params.get('salt')}|{params.get('world')}"
    draw = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32
    return case["answer"] if draw < float(params["quality"]) else "wrong"
"""


def search_spec(
    axes: str,
    *,
    scenario: str = "s",
    n: int = 60,
    split: str = "{dev: 0.6, test: 0.4, seed: 7}",
    quality: float = 0.3,
    world: int = 1,
    extra: str = "",
    confirm: str = "{vs: baseline}",
    options: str = "",
) -> str:
    """A spec over ``n`` cases, a python model (baseline: ``quality``, salt ``base``)
    and a search over ``axes`` (YAML lines below ``axes:``, indented four spaces)."""
    cases = "".join(f'    - {{id: q{i}, question: "Q{i}", answer: "A{i}"}}\n' for i in range(n))
    return (
        "llmopt: 1\n"
        f"scenario: {scenario}\n"
        "task:\n"
        "  id: id\n"
        "  expected: answer\n"
        f"  split: {split}\n"
        f"  cases:\n{cases}"
        "recipe:\n"
        '  template: "{{ question }}"\n'
        "model:\n"
        "  provider: python\n"
        "  id: agent.py:answer\n"
        f"  params: {{quality: {quality}, salt: base, world: {world}}}\n"
        f"{options}"
        "variants:\n"
        "  baseline: {}\n"
        "search:\n"
        f"  axes:\n{axes}"
        "  objective: {metric: exact_match}\n"
        f"  confirm: {confirm}\n"
        f"{extra}"
    )


BETTER = "    model.params.quality: [0.3, 0.95]\n    model.params.salt: [a, b]\n"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return create_registry(entry_points=False)


def _project(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.py").write_text(AGENT, encoding="utf-8")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def calls(folder: Path) -> list[dict[str, Any]]:
    log = folder / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _search(path: Path, registry: Registry, cache: ResponseCache | None = None) -> tuple[Scenario, SearchOutcome]:
    scenario = load_scenario(path, registry)
    return scenario, run_search(Runner(registry, cache), scenario)


def _ids(scenario: Scenario, path: Path) -> tuple[set[str], set[str]]:
    assert scenario.search is not None
    dev = {c.id for c in load_cases(scenario.search.candidates[0].variant.task, path)}
    test = {c.id for c in load_cases(scenario.variants["baseline"].task, path)}
    return dev, test


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


# -- the engine: dev only, strategies, budget, cache -------------------------------------


def test_grid_scores_every_candidate_on_dev_only_and_finds_the_better_one(tmp_path: Path, registry: Registry) -> None:
    path = _project(tmp_path, search_spec(BETTER))
    scenario, outcome = _search(path, registry)
    dev, test = _ids(scenario, path)
    asked = calls(tmp_path)
    assert {c["id"] for c in asked} <= dev and not {c["id"] for c in asked} & test
    assert outcome.winner is not None and outcome.winner.candidate.levels["model.params.quality"] == 0.95
    assert all(run.rounds and run.rounds[-1].n == len(dev) for run in outcome.runs)
    assert outcome.usage.calls == len(asked) == 4 * len(dev) + len(dev)  # every candidate, and baseline for the dev delta
    assert outcome.dev is not None and outcome.dev.delta > 0.4
    quality = [e for e in outcome.effects if e.axes == ("model.params.quality",)]
    assert len(quality) == 1 and quality[0].ci is not None and quality[0].ci[0] > 0.4
    doc = outcome.to_json()
    assert doc["winner"]["name"] == outcome.winner.name and doc["splits"]["dev"]["n"] == len(dev)
    assert set(doc["splits"]["test"]["ids"]) == test
    variant = winner_variant(outcome)
    assert variant is not None and variant.name == "search"
    assert {c.id for c in load_cases(variant.task, path)} == test  # the winner reads test from here on


HALVING_AXES = "    model.params.quality: [0.2, 0.9]\n    model.params.salt: [a, b]\n    model.params.t: [0, 1]\n"


def test_halving_spends_less_than_grid_and_reuses_the_first_cases(tmp_path: Path, registry: Registry) -> None:
    common: dict[str, Any] = {"n": 60, "split": "{dev: 0.6, test: 0.4, seed: 7}"}
    grid_path = _project(tmp_path / "grid", search_spec(HALVING_AXES, **common))
    halving_path = _project(
        tmp_path / "halving",
        search_spec(HALVING_AXES, extra="  strategy: halving\n  eta: 2\n  min_cases: 4\n", **common),
    )
    scenario, grid = _search(grid_path, registry)
    _, halving = _search(halving_path, registry)
    dev, _ = _ids(scenario, grid_path)
    assert len(halving.runs) == 8
    assert halving.usage.calls < grid.usage.calls / 2, (halving.usage.calls, grid.usage.calls)
    assert halving.winner is not None and halving.winner.candidate.levels["model.params.quality"] == 0.9
    assert [r.n for r in halving.winner.rounds] == [4, 8, len(dev)]
    assert [r["candidates"] for r in halving.rounds] == [8, 4, 2]
    assert sorted(str(run.dropped_in) for run in halving.runs) == ["1"] * 4 + ["2"] * 2 + ["3", "None"]
    assert sum(run.dropped_in is None for run in halving.runs) == 1
    first = set(next(run for run in halving.runs if run.dropped_in == 1).cases)
    second = set(next(run for run in halving.runs if run.dropped_in == 2).cases)
    assert len(first) == 4 and len(second) == 8
    assert first < second < set(halving.winner.cases) <= dev  # the same first cases, then more
    asked = [(c["id"], _key(c["params"])) for c in calls(tmp_path / "halving")]
    assert len(asked) == len(set(asked)), "a case was asked twice of the same candidate"


def test_the_budget_is_never_exceeded_and_keeps_the_best_so_far(tmp_path: Path, registry: Registry) -> None:
    path = _project(tmp_path, search_spec(BETTER, n=40, extra="  budget: {calls: 30}\n"))
    _, outcome = _search(path, registry)
    assert len(calls(tmp_path)) <= 30
    assert outcome.usage.calls <= 30
    assert outcome.stopped is not None and "budget" in outcome.stopped and "30" in outcome.stopped
    assert outcome.winner is not None and "best so far" in outcome.stopped
    assert outcome.winner.name in outcome.stopped
    assert outcome.to_json()["stopped"] == outcome.stopped


def test_the_halving_budget_holds_too(tmp_path: Path, registry: Registry) -> None:
    extra = "  strategy: halving\n  eta: 2\n  min_cases: 4\n  budget: {calls: 50}\n"
    path = _project(tmp_path, search_spec(HALVING_AXES, n=60, extra=extra))
    _, outcome = _search(path, registry)
    assert len(calls(tmp_path)) <= 50 and outcome.usage.calls <= 50
    assert outcome.stopped is not None and outcome.winner is not None


def test_a_rerun_with_the_response_cache_makes_no_call(tmp_path: Path, registry: Registry) -> None:
    options = "  options: {cache: true}\n"
    path = _project(tmp_path, search_spec(BETTER, options=options, extra="  strategy: halving\n  min_cases: 4\n"))
    _, first = _search(path, registry, ResponseCache(tmp_path / "cache"))
    made = len(calls(tmp_path))
    assert made > 0 and first.usage.calls == made
    _, again = _search(path, registry, ResponseCache(tmp_path / "cache"))
    assert len(calls(tmp_path)) == made, "the rerun called the model"
    assert again.usage.calls == 0 and again.usage.cache_hits == made
    assert again.winner is not None and first.winner is not None and again.winner.name == first.winner.name
    assert [r.to_json() for r in again.winner.rounds] == [r.to_json() for r in first.winner.rounds]


def test_random_evaluates_only_its_seeded_sample(tmp_path: Path, registry: Registry) -> None:
    path = _project(tmp_path, search_spec(HALVING_AXES, extra="  strategy: random\n  trials: 3\n  seed: 5\n"))
    scenario, outcome = _search(path, registry)
    dev, _ = _ids(scenario, path)
    assert len(outcome.runs) == 3 and outcome.spec.size == 8
    sampled = {_key({"quality": 0.3, "salt": "base", "world": 1} | dict(r.candidate.overrides["model"]["params"])) for r in outcome.runs}
    asked = calls(tmp_path)
    assert {_key(c["params"]) for c in asked} == sampled | {_key({"quality": 0.3, "salt": "base", "world": 1})}
    assert len(asked) == 3 * len(dev) + len(dev)
    assert outcome.winner is not None and outcome.effects == []


def test_candidates_making_identical_requests_are_evaluated_once(tmp_path: Path, registry: Registry) -> None:
    # the second value restates the top level's salt: the same variant as the first
    axes = "    model: [{params: {quality: 0.9}}, {params: {quality: 0.9, salt: base}}, {params: {quality: 0.5}}]\n"
    path = _project(tmp_path, search_spec(axes))
    scenario, outcome = _search(path, registry)
    assert scenario.search is not None
    assert [c.same_as for c in scenario.search.candidates] == [None, "c1", None]
    dev, _ = _ids(scenario, path)
    asked = calls(tmp_path)
    at_09 = [c for c in asked if c["params"]["quality"] == 0.9]
    assert len(at_09) == len(dev), f"{len(at_09)} requests for two identical candidates on {len(dev)} dev cases"
    c1, c2, _ = outcome.runs
    assert [r.to_json() for r in c2.rounds] == [r.to_json() for r in c1.rounds]
    assert outcome.to_json()["candidates"][1]["same_as"] == "c1"


# -- pytest: items, what reaches test, the confirmation ---------------------------------


def _run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest("specs", "-p", "no:cacheprovider", "--llmopt-json=out.json", *args)


def _doc(project: pytest.Pytester) -> dict[str, Any]:
    return json.loads((project.path / "out.json").read_text(encoding="utf-8"))


def _searches(project: pytest.Pytester) -> dict[str, dict[str, Any]]:
    return {s["scenario"]: s["search"] for s in _doc(project)["scenarios"] if s.get("search")}


def _test_ids_asked_only_by_winner_and_vs(project: pytest.Pytester, search: dict[str, Any], base: dict[str, Any]) -> None:
    """Every request for a test case came from the winner's or the baseline's params."""
    world = base["world"]
    winner = next(c for c in search["candidates"] if c["name"] == search["winner"]["name"])
    allowed = {_key(base), _key(base | winner["overrides"]["model"]["params"])}
    test = set(search["splits"]["test"]["ids"])
    asked = [c for c in calls(project.path / "specs") if c["params"]["world"] == world and c["id"] in test]
    assert asked, "the confirmation asked nothing of test"
    assert {_key(c["params"]) for c in asked} <= allowed, sorted({_key(c["params"]) for c in asked} - allowed)
    both = {_key(c["params"]) for c in asked}
    assert len(both) == 2 and all(sum(_key(c["params"]) == k for c in asked) == len(test) for k in both)


def test_a_clearly_better_candidate_is_found_and_confirmed_and_only_it_reaches_test(
    project: pytest.Pytester, write: WriteFile
) -> None:
    write(project, "specs/agent.py", AGENT)
    axes = "    model.params.quality: [0.3, 0.95]\n    model.params.salt: [a, b, c]\n"
    others = (
        "assertions:\n"
        "  - {metric: exact_match, variant: baseline, max: 0.6}\n"
        "  - {metric: exact_match, variant: search, min: 0.8}\n"
    )
    text = search_spec(axes, n=100, split="{dev: 0.5, test: 0.5, seed: 3}", confirm="{vs: baseline, min_delta: 0.2}")
    write(project, "specs/s.yaml", text + others)
    collected = project.runpytest("specs", "-p", "no:cacheprovider", "--collect-only", "-q")
    collected.stdout.fnmatch_lines(
        ["specs/s.yaml::s::baseline::exact_match<=0.6", "specs/s.yaml::s::search::search", "specs/s.yaml::s::search::confirm:*"]
    )
    result = _run(project, "-v")
    result.assert_outcomes(passed=4)
    search = _searches(project)["s"]
    assert search["winner"]["levels"]["model.params.quality"] == "0.95"
    confirmation = search["confirmation"]
    assert confirmation["outcome"] == "passed" and confirmation["looks"] == 1
    assert confirmation["n"] == search["splits"]["test"]["n"] and confirmation["delta"] > 0.4
    assert confirmation["variant"] == "search" and confirmation["vs"] == "baseline"
    assert search["space"]["size"] == 6 and len(search["candidates"]) == 6
    _test_ids_asked_only_by_winner_and_vs(project, search, {"quality": 0.3, "salt": "base", "world": 1})
    scenario = _doc(project)["scenarios"][0]
    (confirm,) = [a for a in scenario["assertions"] if "::confirm:" in a["id"]]
    assert confirm["outcome"] == "passed" and confirm["variant"] == "search"
    test = set(search["splits"]["test"]["ids"])
    for name in ("baseline", "search"):  # ordinary assertions read the test split too
        assert {c["id"] for c in scenario["variants"][name]["cases"]} == test


SEEDS = range(1, 21)


def test_a_null_space_confirms_nothing_though_its_winner_looks_better_on_dev(
    project: pytest.Pytester, write: WriteFile
) -> None:
    """Four candidates exactly as good as the baseline (quality 0.5, only their noise
    differs): the best on dev beats the baseline on dev (the winner's curse), but the
    confirmation on test passes in at most 5% of the seeds."""
    write(project, "specs/agent.py", AGENT)
    axes = "    model.params.salt: [a, b, c, d]\n"
    for seed in SEEDS:
        text = search_spec(
            axes, scenario=f"null{seed}", n=60, quality=0.5, world=seed, split=f"{{dev: 0.5, test: 0.5, seed: {seed}}}",
            extra=f"  seed: {seed}\n",
        )
        write(project, f"specs/null{seed}.yaml", text)
    result = _run(project)
    searches = _searches(project)
    assert len(searches) == len(SEEDS)
    outcomes = [searches[f"null{s}"]["confirmation"]["outcome"] for s in SEEDS]
    assert set(outcomes) <= {"passed", "failed"}, outcomes
    assert outcomes.count("passed") <= 1, outcomes  # at least 95% of 20 seeds confirm nothing
    curse = [searches[f"null{s}"]["winner"]["dev"]["delta"] for s in SEEDS]
    assert sum(d > 0 for d in curse) >= 12, curse  # the naive rule "best dev beats baseline on dev" would pass these
    result.assert_outcomes(passed=len(SEEDS) + outcomes.count("passed"), failed=outcomes.count("failed"))
    for seed in (1, 2, 3):
        _test_ids_asked_only_by_winner_and_vs(project, searches[f"null{seed}"], {"quality": 0.5, "salt": "base", "world": seed})


def test_a_stopped_search_passes_with_a_warning_and_its_note_in_the_results(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/agent.py", AGENT)
    write(project, "specs/s.yaml", search_spec(BETTER, n=40, extra="  budget: {calls: 30}\n"))
    result = _run(project)
    search = _searches(project)["s"]
    assert search["stopped"] and "best so far" in search["stopped"]
    assert search["usage"]["calls"] <= 30
    assert search["winner"] is not None
    result.stdout.fnmatch_lines(["*SearchStopped*budget*"])
    outcomes = {a["id"].split("::")[-1]: a["outcome"] for a in _doc(project)["scenarios"][0]["assertions"]}
    assert len(outcomes) == 1 and list(outcomes)[0].startswith("confirm:")


def test_a_search_without_any_scorable_candidate_is_an_error_and_a_failing_candidate_is_dropped(
    project: pytest.Pytester, write: WriteFile
) -> None:
    agent = AGENT + (
        "\n\ndef broken(case, params):\n    raise RuntimeError('down for ' + case['id'])\n"
        "\n\ndef flaky(case, params):\n    if case['id'] in ('q1', 'q2', 'q3'):\n        raise RuntimeError('flaky')\n"
        "    return answer(case, params)\n"
    )
    write(project, "specs/agent.py", agent)
    write(project, "specs/broken.yaml", search_spec(BETTER, scenario="broken").replace("agent.py:answer", "agent.py:broken"))
    axes = "    model.id: ['agent.py:answer', 'agent.py:flaky']\n    model.params.quality: [0.3, 0.95]\n"
    write(project, "specs/flaky.yaml", search_spec(axes, scenario="flaky"))
    result = _run(project, "-rA")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["ERROR specs/broken.yaml::broken::search::search*", "ERROR specs/broken.yaml::broken::search::confirm:*"])
    result.stdout.fnmatch_lines(["*the search of 'broken' found no winner: no candidate could be scored on dev*RuntimeError: down for*"])
    searches = _searches(project)
    broken = searches["broken"]
    assert broken["winner"] is None and broken["error"] and broken["confirmation"]["outcome"] == "error"
    assert broken["confirmation"]["looks"] is None
    flaky = searches["flaky"]
    errors = {c["name"]: c["error"] for c in flaky["candidates"]}
    assert errors["c1"] is None and errors["c2"] is None and "flaky" in (errors["c3"] or "") and "flaky" in (errors["c4"] or "")
    assert flaky["winner"]["name"] == "c2" and flaky["confirmation"]["outcome"] == "passed"


# -- collection ------------------------------------------------------------------------


def test_a_broken_search_spec_is_a_collection_error_and_the_other_spec_still_runs(
    project: pytest.Pytester, write: WriteFile
) -> None:
    write(project, "specs/agent.py", AGENT)
    write(project, "specs/good.yaml", search_spec(BETTER, scenario="good"))
    bad = search_spec("    model.provider: [python, nosuch]\n    task.sample: [3]\n", scenario="bad")
    write(project, "specs/bad.yaml", bad)
    lines = bad.splitlines()
    provider_line = next(i for i, line in enumerate(lines, 1) if "nosuch" in line)
    task_line = next(i for i, line in enumerate(lines, 1) if "task.sample" in line)
    result = _run(project, "--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=1)
    out = result.stdout.str()
    column = lines[provider_line - 1].index("nosuch") + 1
    assert f"specs/bad.yaml:{provider_line}:{column}: search.axes.model.provider[1]: unknown provider 'nosuch'" in out
    assert f"specs/bad.yaml:{task_line}:5: search.axes.task.sample: 'task' cannot be searched" in out
    assert "Traceback" not in out
    assert set(_searches(project)) == {"good"}


def test_a_search_with_an_unknown_objective_metric_never_reaches_the_runner(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/agent.py", AGENT)
    write(project, "specs/s.yaml", search_spec(BETTER).replace("{metric: exact_match}", "{metric: exact_mtch}"))
    result = _run(project)
    assert result.ret != pytest.ExitCode.OK
    out = result.stdout.str()
    assert "search.objective.metric: unknown metric 'exact_mtch'" in out, out[-3000:]
    assert calls(project.path / "specs") == []
    assert "KeyError" not in out and "Traceback" not in out


# -- the looks ledger --------------------------------------------------------------------


def test_a_second_winner_on_the_same_test_split_is_look_2(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/agent.py", AGENT)
    first = search_spec("    model.params.quality: [0.3, 0.95]\n", n=80)
    write(project, "specs/s.yaml", first)
    _run(project).assert_outcomes(passed=2)
    assert _searches(project)["s"]["confirmation"]["looks"] == 1
    _run(project).assert_outcomes(passed=2)  # the same winner again: the same look
    assert _searches(project)["s"]["confirmation"]["looks"] == 1
    write(project, "specs/s.yaml", first.replace("[0.3, 0.95]", "[0.3, 0.9]"))
    _run(project).assert_outcomes(passed=2)
    confirmation = _searches(project)["s"]["confirmation"]
    assert confirmation["looks"] == 2
    assert "look 2" in confirmation["note"]


def test_fresh_refuses_a_second_winner_before_reading_test(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/agent.py", AGENT)
    first = search_spec("    model.params.quality: [0.3, 0.95]\n", n=80, confirm="{vs: baseline, fresh: true}")
    write(project, "specs/s.yaml", first)
    _run(project).assert_outcomes(passed=2)
    assert _searches(project)["s"]["confirmation"]["looks"] == 1
    test = set(_searches(project)["s"]["splits"]["test"]["ids"])
    (project.path / "specs" / "calls.jsonl").unlink()
    write(project, "specs/s.yaml", first.replace("[0.3, 0.95]", "[0.3, 0.9]"))
    result = _run(project, "-rE")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*search.confirm.fresh: 1 other winner(s) were already confirmed on this test split*"])
    result.stdout.fnmatch_lines(["ERROR specs/s.yaml::s::search::confirm:*"])
    assert "Traceback" not in result.stdout.str()
    assert not {c["id"] for c in calls(project.path / "specs")} & test, "test cases were read before the refusal"
    (confirm,) = [a for a in _doc(project)["scenarios"][0]["assertions"] if "::confirm:" in a["id"]]
    assert confirm["outcome"] == "error"


# -- xdist -------------------------------------------------------------------------------


def test_xdist_gives_the_same_search_sections_as_a_serial_run(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/agent.py", AGENT)
    write(project, "specs/a.yaml", search_spec(BETTER, scenario="a"))
    write(project, "specs/b.yaml", search_spec(HALVING_AXES, scenario="b", n=80, world=2, extra="  strategy: halving\n  min_cases: 4\n"))
    _run(project).assert_outcomes(passed=4)
    serial = _searches(project)
    (project.path / "specs" / "calls.jsonl").unlink()
    result = _run(project, "-n", "2", "-v")
    result.assert_outcomes(passed=4)
    parallel = _searches(project)
    assert set(serial) == {"a", "b"}
    assert parallel == serial
    asked = [(c["id"], _key(c["params"])) for c in calls(project.path / "specs")]
    assert len(asked) == len(set(asked)), "a request was made twice: more than one worker ran a search"
    workers: dict[str, set[str]] = {}
    for line in result.outlines:
        if line.startswith("[gw") and "PASSED specs/" in line:
            workers.setdefault(line.split("PASSED ")[1].split("::")[0], set()).add(line.split("]")[0])
    assert len(workers) == 2 and all(len(w) == 1 for w in workers.values()), workers
    (project.path / "specs" / "calls.jsonl").rename(project.path / "specs" / "parallel.jsonl")
    for name, world in (("a", 1), ("b", 2)):
        (project.path / "specs" / "calls.jsonl").write_bytes((project.path / "specs" / "parallel.jsonl").read_bytes())
        _test_ids_asked_only_by_winner_and_vs(project, parallel[name], {"quality": 0.3, "salt": "base", "world": world})


# -- llmopt search SPEC --write --------------------------------------------------------------


def test_llmopt_search_writes_the_winner_and_pytest_then_gates_it(project: pytest.Pytester, write: WriteFile) -> None:
    from llmopt.cli import main

    write(project, "specs/agent.py", AGENT)
    header = "# the team's help desk search\n"
    text = header + search_spec(BETTER, n=100, split="{dev: 0.5, test: 0.5, seed: 3}", confirm="{vs: baseline, min_delta: 0.2}")
    spec = write(project, "specs/s.yaml", text + "assertions:\n  - {metric: exact_match, variant: baseline, max: 0.6}  # keep\n")
    before = spec.read_text(encoding="utf-8")
    assert main(["search", str(spec), "--write", "--json", str(project.path / "search.json")]) == 0
    after = spec.read_text(encoding="utf-8")
    assert after.startswith(header) and "max: 0.6}  # keep" in after
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert any(line.strip().startswith("# written by llmopt search") for line in added)
    assert any("confirmed vs baseline: +" in line and "(look 1)" in line for line in added)
    assert any(line.strip().startswith("optimized:") and "0.95" in line for line in added)
    doc = json.loads((project.path / "search.json").read_text(encoding="utf-8"))
    assert doc["scenarios"][0]["search"]["confirmation"]["outcome"] == "passed"
    result = _run(project, "-v")
    result.stdout.fnmatch_lines(["*specs/s.yaml::s::optimized::exact_match>=baseline+0.2* PASSED*"])
    scenario = _doc(project)["scenarios"][0]
    assert scenario["variants"]["optimized"]["metrics"]["exact_match"]["value"] > 0.8
    assert scenario["search"]["confirmation"]["looks"] == 1  # the same winner again: the same look
    again = main(["search", str(spec), "--write"])
    assert again == 0 and spec.read_text(encoding="utf-8") == after  # writing twice changes nothing

"""The engine without pytest: evaluation, errors per case, memoization, event loops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmopt.engine.runner import Runner, run_sync
from llmopt.errors import ProviderUnavailable
from llmopt.registry import create_registry
from llmopt.spec import load_scenario

SPEC = """\
llmopt: 1
scenario: unit
task:
  id: id
  expected: answer
  cases:
    - {id: a, question: "Paris", answer: "Paris"}
    - {id: b, question: "{{ 7 * 7 }}", answer: "49"}
recipe:
  template: "{{ question }}"
model:
  provider: python
  id: agent.py:answer
assertions:
  - {metric: exact_match, min: 0.5}
"""

AGENT = """\
from pathlib import Path

def answer(prompt, case):
    with open(Path(__file__).with_name("calls.log"), "a") as log:
        log.write(case["id"] + "\\n")
    return prompt
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    (tmp_path / "agent.py").write_text(AGENT, encoding="utf-8")
    path = tmp_path / "unit.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def runner() -> Runner:
    return Runner(create_registry(entry_points=False), cache=None)


def test_template_syntax_in_a_dataset_value_is_data(spec: Path) -> None:
    result = runner().evaluate(load_scenario(spec), "default")
    outputs = {c.id: c.output for c in result.cases}
    assert outputs == {"a": "Paris", "b": "{{ 7 * 7 }}"}
    assert result.metrics["exact_match"].value == 0.5


def test_each_variant_is_evaluated_once(spec: Path) -> None:
    engine = runner()
    scenario = load_scenario(spec)
    engine.evaluate(scenario, "default")
    engine.evaluate(scenario, "default")
    assert sorted((spec.parent / "calls.log").read_text().split()) == ["a", "b"]


def test_undefined_template_variable_is_a_case_error_naming_it(spec: Path) -> None:
    spec.write_text(SPEC.replace('template: "{{ question }}"', 'template: "{{ questoin }}"'), encoding="utf-8")
    result = runner().evaluate(load_scenario(spec), "default")
    assert result.errors == 2
    error = result.cases[0].error or ""
    assert "unit.yaml [unit::default] case 'a': recipe.template: 'questoin' is undefined" in error
    assert "exact_match" not in result.metrics  # never scored as 0


def test_unavailable_provider_stops_the_variant(spec: Path) -> None:
    spec.write_text(SPEC.replace("agent.py:answer", "agent.py:missing"), encoding="utf-8")
    with pytest.raises(ProviderUnavailable, match="missing"):
        runner().evaluate(load_scenario(spec), "default")


def test_evaluation_inside_a_running_event_loop(spec: Path) -> None:
    engine, scenario = runner(), load_scenario(spec)

    async def notebook_cell() -> float:
        # A loop is running here (as in pytest-asyncio or Jupyter): no hang, no error.
        return engine.evaluate(scenario, "default").metrics["exact_match"].value

    assert asyncio.run(notebook_cell()) == 0.5


def test_run_sync_without_a_loop() -> None:
    async def seven() -> int:
        return 7

    assert run_sync(seven) == 7


def test_run_sync_hands_back_a_result_whose_repr_is_never_built() -> None:
    built: list[str] = []

    class Large:
        def __repr__(self) -> str:  # a variant of 100,000 cases takes seconds
            built.append("repr")
            return "Large()"

    async def result() -> Large:
        return Large()

    assert isinstance(run_sync(result), Large)
    assert built == []


def test_the_collector_runs_less_often_while_cases_are_evaluated_and_as_before_after() -> None:
    import gc
    import threading

    from llmopt.engine.runner import OLD_THRESHOLD, YOUNG_THRESHOLD, fewer_collections, in_turn

    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []

    async def work(n: int) -> int:
        seen.append(gc.get_threshold())
        return n

    asyncio.run(in_turn(list(range(3)), 2, work))
    assert seen == [(YOUNG_THRESHOLD, before[1], OLD_THRESHOLD)] * 3 and gc.get_threshold() == before
    inside, released = threading.Event(), threading.Event()

    def other() -> None:
        with fewer_collections():
            inside.set()
            released.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    with fewer_collections():
        pass
    assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], OLD_THRESHOLD)  # the other thread's block still runs
    released.set()
    thread.join(5)
    assert gc.get_threshold() == before


def test_an_evaluation_commits_its_answers_before_it_returns(spec: Path, tmp_path: Path) -> None:
    import sqlite3

    from llmopt.engine.cache import CACHE_FILE_NAME, ResponseCache

    spec.write_text(SPEC.replace("id: agent.py:answer", "id: agent.py:answer\n  options: {cache: true}"), encoding="utf-8")
    cache = ResponseCache(tmp_path / "cache")
    result = Runner(create_registry(entry_points=False), cache=cache).evaluate(load_scenario(spec), "default")
    assert len(result.cases) == 2
    with sqlite3.connect(tmp_path / "cache" / CACHE_FILE_NAME) as other:  # another process's view
        assert other.execute("SELECT count(*) FROM responses").fetchone() == (2,)
    cache.close()


def test_in_turn_keeps_order_bounds_work_and_stops_at_the_first_error() -> None:
    from llmopt.engine.runner import in_turn

    running, peak, seen = 0, 0, []

    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * (n % 3))
        running -= 1
        seen.append(n)
        return n * n

    assert asyncio.run(in_turn(list(range(20)), 4, work)) == [n * n for n in range(20)]
    assert peak == 4 and sorted(seen) == list(range(20))
    assert asyncio.run(in_turn([], 4, work)) == []

    started: list[int] = []

    async def failing(n: int) -> int:
        started.append(n)
        if n == 2:
            raise ProviderUnavailable("gone")
        await asyncio.sleep(0.05)
        return n

    with pytest.raises(ProviderUnavailable, match="gone"):
        asyncio.run(in_turn(list(range(100)), 3, failing))
    assert len(started) < 10  # the other workers were cancelled, not left to run on


def test_usage_total_adds_every_field_as_addition_does() -> None:
    from llmopt.engine.results import Usage

    parts = [Usage(3, 4, 0.25, 1, 2, 0.5, 1), Usage(1, 0, 0.125, 0, 1, 0.0, 0), Usage(0, 7, 0.0, 2, 0, 0.25, 3)]
    assert Usage.total(parts) == parts[0] + parts[1] + parts[2]
    assert Usage.total([]) == Usage()

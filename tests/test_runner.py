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

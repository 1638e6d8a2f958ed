"""Run-wide controls through pytest: cache modes, the budget, unavailable providers, cost."""

from __future__ import annotations

import json

import pytest

SPEC = """\
llmopt: 1
scenario: priced
task:
  id: id
  cases: [{id: a, q: one, expected: one}, {id: b, q: two, expected: two}, {id: c, q: three, expected: three}]
recipe: {template: "{{ q }}"}
model: {provider: priced, concurrency: 1}
assertions:
  - {metric: exact_match, min: 1.0}
  - {metric: cost, max: 0.05}
"""

# A project plugin: a provider that answers with the prompt, at $0.01 a call, and logs calls.
PLUGIN = """\
from pathlib import Path
import llmopt
from llmopt.provider import Response

class Priced:
    concurrency = 1
    cacheable = True
    def identity(self):
        return {"model": "priced-1"}
    async def generate(self, request):
        with open(Path(__file__).with_name("calls.log"), "a") as log:
            log.write(request.case.id + "\\n")
        return Response(text=request.prompt, input_tokens=3, output_tokens=1, cost_usd=0.01, model="priced-1")

class PricedType:
    name = "priced"
    def check(self, spec, base_dir):
        return []
    def create(self, spec, base_dir):
        return Priced()

@llmopt.hookimpl
def llmopt_provider_types():
    return [PricedType()]
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nllmopt_plugins = plugins.priced\nllmopt_cache_dir = .c\n")
    (pytester.path / "plugins").mkdir()
    (pytester.path / "plugins" / "__init__.py").write_text("", encoding="utf-8")
    (pytester.path / "plugins" / "priced.py").write_text(PLUGIN, encoding="utf-8")
    (pytester.path / "specs").mkdir()
    (pytester.path / "specs" / "priced.yaml").write_text(SPEC, encoding="utf-8")
    return pytester


def calls(project: pytest.Pytester) -> list[str]:
    log = project.path / "plugins" / "calls.log"
    return log.read_text().split() if log.exists() else []


def results(project: pytest.Pytester, name: str = "r.json") -> dict:
    return json.loads((project.path / name).read_text(encoding="utf-8"))["scenarios"][0]


def test_cost_is_reported_and_asserted(project: pytest.Pytester) -> None:
    result = project.runpytest("specs", "--llmopt-json", "r.json")
    result.assert_outcomes(passed=2)
    variant = results(project)["variants"]["default"]
    assert variant["usage"]["cost_usd"] == pytest.approx(0.03)
    assert variant["metrics"]["cost"]["value"] == pytest.approx(0.03)
    result.stdout.fnmatch_lines(["*spent $0.0300 on 3 calls; 0 answers from the cache*"])


def test_a_warm_rerun_costs_nothing_but_the_cost_metric_keeps_the_original_figures(project: pytest.Pytester) -> None:
    project.runpytest("specs").assert_outcomes(passed=2)
    result = project.runpytest("specs", "--llmopt-json", "r.json")
    result.assert_outcomes(passed=2)
    variant = results(project)["variants"]["default"]
    assert variant["usage"]["cost_usd"] == 0.0 and variant["usage"]["cached_cost_usd"] == pytest.approx(0.03)
    assert variant["metrics"]["cost"]["value"] == pytest.approx(0.03)
    assert len(calls(project)) == 3
    result.stdout.fnmatch_lines(["*spent $0.0000 on 0 calls; 3 answers from the cache (saving $0.0300)*"])


def test_replay_fails_on_a_cold_cache_and_passes_on_a_warm_one(project: pytest.Pytester) -> None:
    cold = project.runpytest("specs", "--llmopt-cache=replay")
    cold.assert_outcomes(errors=2)
    cold.stdout.fnmatch_lines(["  priced.yaml ?priced::default? case 'a': no cached answer (repeat 0) and --llmopt-cache=replay makes no calls*"])
    assert calls(project) == []
    project.runpytest("specs").assert_outcomes(passed=2)
    project.runpytest("specs", "--llmopt-cache=replay").assert_outcomes(passed=2)
    assert len(calls(project)) == 3


def test_refresh_calls_again(project: pytest.Pytester) -> None:
    project.runpytest("specs").assert_outcomes(passed=2)
    project.runpytest("specs", "--llmopt-cache=refresh").assert_outcomes(passed=2)
    assert len(calls(project)) == 6


def test_no_cache_contradicting_a_cache_mode_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("specs", "--llmopt-no-cache", "--llmopt-cache=replay")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmopt-no-cache contradicts --llmopt-cache=replay*"])


def test_budget_stops_spending_names_itself_and_fails_the_run(project: pytest.Pytester) -> None:
    result = project.runpytest("specs", "--llmopt-budget", "0.015", "--llmopt-json", "r.json")
    assert result.ret != pytest.ExitCode.OK
    assert len(calls(project)) == 2  # the second call reached the budget; the third was not made
    errors = [c["error"] for c in results(project)["variants"]["default"]["cases"] if c["error"]]
    assert len(errors) == 1 and "budget of $0.0150 is used up ($0.0200 spent; --llmopt-budget)" in errors[0]
    result.stdout.fnmatch_lines(["*budget $0.0150 used up: 1 calls not made (the run fails)*"])


def test_budget_is_shared_by_the_xdist_workers_of_a_run(project: pytest.Pytester) -> None:
    six = "cases: [" + ", ".join(f"{{id: c{i}, q: x{i}, expected: x{i}}}" for i in range(6)) + "]"
    spec = SPEC.replace(SPEC.splitlines()[4], "  " + six).replace("max: 0.05}", "max: 0.1}")
    (project.path / "specs" / "priced.yaml").write_text(spec, encoding="utf-8")
    free = SPEC.replace("scenario: priced", "scenario: free").replace("provider: priced, concurrency: 1", "provider: echo")
    (project.path / "specs" / "free.yaml").write_text(free, encoding="utf-8")
    result = project.runpytest_subprocess("specs", "-n", "2", "--llmopt-budget", "0.045")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # The priced scenario may spend the whole run's budget: an even split per worker
    # would have stopped it after 3 calls.
    assert len(calls(project)) == 5
    result.stdout.fnmatch_lines(["*budget $0.0450 used up: 1 calls not made (the run fails)*"])


def test_a_used_up_budget_does_not_stop_models_that_cost_nothing(project: pytest.Pytester) -> None:
    free = SPEC.replace("scenario: priced", "scenario: free").replace("provider: priced, concurrency: 1", "provider: echo")
    (project.path / "specs" / "z_free.yaml").write_text(free, encoding="utf-8")  # runs after the budget is gone
    result = project.runpytest("specs", "-p", "no:randomly", "--llmopt-budget", "0.015")
    result.assert_outcomes(passed=2, errors=2)
    assert calls(project) == ["a", "b"]
    result.stdout.fnmatch_lines(["*budget $0.0150 used up: 1 calls not made (the run fails)*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_budget_failure_is_not_hidden_by_max_error_rate(project: pytest.Pytester) -> None:
    spec = SPEC.replace("min: 1.0}", "min: 0.5, max_error_rate: 0.5}").replace("max: 0.05}", "max: 0.05, max_error_rate: 0.5}")
    (project.path / "specs" / "priced.yaml").write_text(spec, encoding="utf-8")
    result = project.runpytest("specs", "--llmopt-budget", "0.015")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_unavailable_provider_is_an_error_by_default_and_a_skip_on_request(project: pytest.Pytester) -> None:
    spec = SPEC.replace("provider: priced, concurrency: 1", "provider: python, id: 'agent.py:nowhere'")
    (project.path / "specs" / "priced.yaml").write_text(spec, encoding="utf-8")
    (project.path / "specs" / "agent.py").write_text("def answer(prompt):\n    return prompt\n", encoding="utf-8")
    project.runpytest("specs").assert_outcomes(errors=2)
    skipped = project.runpytest("specs", "--llmopt-unavailable=skip", "-rs")
    skipped.assert_outcomes(skipped=2)
    skipped.stdout.fnmatch_lines(["*nowhere*"])


def test_replay_calls_no_uncached_python_function_and_still_runs_echo(project: pytest.Pytester) -> None:
    (project.path / "specs" / "app.py").write_text(
        "from pathlib import Path\n\ndef answer(prompt):\n"
        "    Path(__file__).with_name('called').write_text('yes')\n    return prompt\n",
        encoding="utf-8",
    )
    (project.path / "specs" / "mine.yaml").write_text(
        "llmopt: 1\nscenario: mine\ntask:\n  id: id\n  cases: [{id: a, q: one, expected: one}]\n"
        'recipe: {template: "{{ q }}"}\nmodel: {provider: python, id: "app.py:answer"}\n'
        "variants:\n  app: {}\n  checked: {model: {provider: echo}}\n"
        "assertions:\n  - {metric: exact_match, min: 1.0}\n",
        encoding="utf-8",
    )
    result = project.runpytest("specs/mine.yaml", "--llmopt-cache=replay")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*replay makes no calls, and 'python' answers are not cached*cache: true*"])
    assert not (project.path / "specs" / "called").exists()
    result.stdout.fnmatch_lines(["spent $0.0000 on 1 calls*"])  # the echo variant's one answer, at $0

"""The pytest plugin, driven through pytester: collection, items, phases, reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import WriteFile

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

ECHO_SPEC = """\
llmopt: 1
scenario: echo-demo
task:
  id: id
  expected: answer
  cases:
    - {id: a, question: "Paris", answer: "Paris"}
    - {id: b, question: "Rome", answer: "Rome"}
    - {id: c, question: "Oslo", answer: "Lima"}
    - {id: d, question: "Bern", answer: "Bern"}
recipe:
  template: "{{ question }}"
model:
  provider: echo
variants:
  baseline: {recipe: {template: "I think it is {{ question }}, maybe"}}
  tuned: {}
assertions:
  - metric: exact_match
    variant: tuned
    min: 0.7
  - metric: exact_match
    variant: tuned
    vs: baseline
    min_delta: 0.5
"""


def test_spec_becomes_one_item_per_assertion_with_readable_ids(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/echo.yaml", ECHO_SPEC)
    result = project.runpytest("specs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "specs/echo.yaml::echo-demo::tuned::exact_match>=0.7",
            "specs/echo.yaml::echo-demo::tuned::exact_match>=baseline+0.5",
        ]
    )


def test_passing_run_writes_results_json_of_the_contract(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/echo.yaml", ECHO_SPEC)
    result = project.runpytest("specs", "--llmopt-json", "out/results.json")
    result.assert_outcomes(passed=2)
    doc = json.loads((project.path / "out/results.json").read_text())
    assert doc["llmopt"] == 1
    (scenario,) = doc["scenarios"]
    assert scenario["scenario"] == "echo-demo"
    assert scenario["spec"] == "specs/echo.yaml"
    tuned = scenario["variants"]["tuned"]
    assert tuned["n"] == 4 and tuned["errors"] == 0
    assert tuned["metrics"]["exact_match"]["value"] == pytest.approx(0.75)
    low, high = tuned["metrics"]["exact_match"]["ci"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0
    assert set(tuned["usage"]) >= {"input_tokens", "output_tokens", "cost_usd", "cache_hits"}
    assert {c["id"]: c["scores"]["exact_match"] for c in tuned["cases"]} == {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0}
    delta = [a for a in scenario["assertions"] if a["vs"] == "baseline"][0]
    assert delta["outcome"] == "passed"
    assert delta["delta"] == pytest.approx(0.75)
    assert delta["id"].startswith("specs/echo.yaml::echo-demo::tuned::")


def test_summary_table_lists_variants_metrics_and_verdicts(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/echo.yaml", ECHO_SPEC)
    result = project.runpytest("specs")
    result.stdout.fnmatch_lines(
        [
            "*llmopt summary*",
            "echo-demo  (specs/echo.yaml)",
            "*variant*metric*value*95% CI*check*result*",
            "*tuned*exact_match*0.750*>= 0.7*PASSED*",
            "*tuned*exact_match*0.750*>= baseline + 0.5 (delta +0.750)*PASSED*",
        ]
    )


def test_failed_threshold_shows_observed_expected_and_worst_cases(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/echo.yaml", ECHO_SPEC.replace("min: 0.7", "min: 0.9"))
    result = project.runpytest("specs")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*exact_match of tuned = 0.750 (n=4, 95% CI*); expected >= 0.9",
            "*worst cases:",
            "*case | input | expected | output | score",
            "*c    | Oslo  | Lima     | Oslo   | 0",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_removing_the_optimization_fails_the_delta(project: pytest.Pytester, write: WriteFile) -> None:
    spec = ECHO_SPEC.replace('baseline: {recipe: {template: "I think it is {{ question }}, maybe"}}', "baseline: {}")
    write(project, "specs/echo.yaml", spec)
    result = project.runpytest("specs")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*exact_match: tuned - baseline = +0.000 (4 paired cases*expected tuned >= baseline + 0.5"])


def test_provider_errors_are_errors_not_failures(project: pytest.Pytester, write: WriteFile) -> None:
    write(
        project,
        "specs/agent.py",
        """
        def answer(prompt, case):
            if case["id"] == "b":
                raise TimeoutError("upstream took too long")
            return prompt
        """,
    )
    spec = ECHO_SPEC.replace("provider: echo", "provider: python\n  id: agent.py:answer")
    write(project, "specs/echo.yaml", spec)
    result = project.runpytest("specs", "--llmopt-json", "r.json")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*1 of 4 cases of variant 'tuned' failed (25%; max_error_rate 0%)*", "  *case 'b': *TimeoutError: upstream took too long*"])
    assert "Traceback" not in result.stdout.str() and "raise " not in result.stdout.str()
    doc = json.loads((project.path / "r.json").read_text())
    tuned = doc["scenarios"][0]["variants"]["tuned"]
    assert tuned["errors"] == 1
    case_b = [c for c in tuned["cases"] if c["id"] == "b"][0]
    assert "TimeoutError" in case_b["error"] and case_b["scores"] == {}
    assert {a["outcome"] for a in doc["scenarios"][0]["assertions"]} == {"error"}


def test_max_error_rate_tolerates_some_errors(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/agent.py", "def answer(prompt, case):\n    if case['id'] == 'b':\n        raise ValueError('x')\n    return prompt\n")
    spec = ECHO_SPEC.replace("provider: echo", "provider: python\n  id: agent.py:answer").replace(
        "    min: 0.7\n", "    min: 0.6\n    max_error_rate: 0.3\n"
    )
    write(project, "specs/echo.yaml", spec)
    result = project.runpytest("specs", "-k", "exact_match and not baseline")
    result.assert_outcomes(passed=1, deselected=1)


def test_broken_spec_is_its_own_collection_error_and_others_still_run(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/good.yaml", ECHO_SPEC)
    write(
        project,
        "specs/broken.yaml",
        """\
        llmopt: 1
        scenario: broken
        task:
          cases: [{id: a, q: x}]
        recipe: {template: "{{ q }}"}
        model: {provider: ecko}
        assertions:
          - metric: exact_mtch
            min: 0.5
        """,
    )
    result = project.runpytest("specs", "--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=1)
    out = result.stdout.str()
    assert "specs/broken.yaml:6:19: model.provider: unknown provider 'ecko' (did you mean 'echo'?" in out
    assert "specs/broken.yaml:8:13: assertions[0].metric: unknown metric 'exact_mtch' (did you mean 'exact_match'?" in out
    assert "Traceback" not in out


def test_yaml_without_llmopt_key_is_never_collected(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/ci.yaml", "name: build\non: [push]\njobs: {}\n")
    write(project, "specs/echo.yaml", ECHO_SPEC)
    result = project.runpytest("specs", "--collect-only", "-q")
    assert "ci.yaml" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*2 tests collected*"])


def test_lookalike_yaml_files_are_warned_about_and_counted(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/ci.yaml", "name: build\non: [push]\njobs: {}\n")
    write(project, "specs/echo.yaml", ECHO_SPEC)
    write(project, "specs/typo.yaml", ECHO_SPEC.replace("llmopt: 1", "llmpot: 1"))
    (project.path / "specs" / "wide.yaml").write_bytes(ECHO_SPEC.encode("utf-16"))
    result = project.runpytest("specs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*SpecWarning: specs/typo.yaml:1:1: top-level key 'llmpot' looks like a misspelt 'llmopt' marker*",
            "*SpecWarning: specs/wide.yaml:1:1: is a spec saved as UTF-16: llmopt reads specs as UTF-8 text only*",
            "llmopt: 2 YAML file(s) look like specs but were not collected (see the warnings): *",
            "*2 tests collected*",
        ]
    )
    assert "ci.yaml" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK
    result = project.runpytest("specs")
    result.stdout.fnmatch_lines(
        ["llmopt: 2 YAML file(s) look like specs but were not collected (see the warnings): specs/typo.yaml, specs/wide.yaml"]
    )


def test_an_unpriced_hosted_model_under_a_budget_is_a_warning_naming_it(project: pytest.Pytester, write: WriteFile) -> None:
    hosted = ECHO_SPEC.replace(
        "provider: echo", "provider: openai\n  id: acme-model-7\n  base_url: http://127.0.0.1:9/v1"
    ).replace("baseline: {recipe:", "baseline: {model: {id: gpt-4o-mini-2024-07-18}, recipe:")
    write(project, "specs/hosted.yaml", hosted)
    result = project.runpytest("specs", "--collect-only", "-q", "--llmopt-budget", "1")
    result.stdout.fnmatch_lines(
        [
            (
                "*BudgetWarning: specs/hosted.yaml:2:1: model 'acme-model-7' (openai; variant tuned) has no known"
                " price, so its spend is unknown, not $0, and --llmopt-budget 1 cannot stop it*"
            )
        ]
    )
    assert "gpt-4o-mini" not in result.stdout.str()
    assert "BudgetWarning" not in project.runpytest("specs", "--collect-only", "-q").stdout.str()
    priced = hosted.replace("  base_url:", "  price: {input: 1, output: 2}\n  base_url:")
    write(project, "specs/hosted.yaml", priced)
    assert "BudgetWarning" not in project.runpytest("specs", "--collect-only", "-q", "--llmopt-budget", "1").stdout.str()


def test_cache_makes_the_second_run_hit_and_no_cache_bypasses_it(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/agent.py", "CALLS = []\ndef answer(prompt):\n    return prompt\n")
    spec = ECHO_SPEC.replace("provider: echo", "provider: python\n  id: agent.py:answer\n  options: {cache: true}")
    write(project, "specs/echo.yaml", spec)
    project.runpytest("specs").assert_outcomes(passed=2)
    project.runpytest("specs", "--llmopt-json", "warm.json").assert_outcomes(passed=2)
    warm = json.loads((project.path / "warm.json").read_text())["scenarios"][0]["variants"]
    assert warm["tuned"]["usage"]["cache_hits"] == 4 and warm["baseline"]["usage"]["cache_hits"] == 4
    project.runpytest("specs", "--llmopt-no-cache", "--llmopt-json", "cold.json").assert_outcomes(passed=2)
    cold = json.loads((project.path / "cold.json").read_text())["scenarios"][0]["variants"]
    assert cold["tuned"]["usage"]["cache_hits"] == 0


def test_project_plugin_adds_a_metric(project: pytest.Pytester, write: WriteFile) -> None:
    project.makeini("[pytest]\nllmopt_plugins = plugins.shout\nllmopt_cache_dir = .c\n")
    write(
        project,
        "plugins/shout.py",
        """
        import llmopt
        from llmopt.metric import case_metric

        @case_metric(name="shouting")
        def shouting(sample, args):
            "1.0 when the output is all upper case."
            return sample.output.isupper()

        @llmopt.hookimpl
        def llmopt_metrics():
            return [shouting]
        """,
    )
    write(project, "plugins/__init__.py", "")
    spec = ECHO_SPEC.replace("  - metric: exact_match\n    variant: tuned\n    min: 0.7\n", "  - metric: shouting\n    variant: tuned\n    max: 0.0\n")
    write(project, "specs/echo.yaml", spec)
    result = project.runpytest("specs", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*tuned::shouting<=0 PASSED*"])


@pytest.mark.parametrize("workers", ["2"])
def test_xdist_merges_results_into_one_json(project: pytest.Pytester, workers: str, write: WriteFile) -> None:
    write(project, "specs/echo.yaml", ECHO_SPEC)
    write(project, "specs/second.yaml", ECHO_SPEC.replace("scenario: echo-demo", "scenario: second"))
    serial = project.runpytest("specs", "--llmopt-json", "serial.json")
    serial.assert_outcomes(passed=4)
    parallel = project.runpytest("specs", "-n", workers, "-v", "--llmopt-json", "parallel.json")
    parallel.assert_outcomes(passed=4)
    workers_of: dict[str, set[str]] = {}
    for line in parallel.outlines:
        if line.startswith("[gw") and "PASSED specs/" in line:
            spec = line.split("PASSED ")[1].split("::")[0]
            workers_of.setdefault(spec, set()).add(line.split("]")[0])
    assert len(workers_of) == 2 and all(len(w) == 1 for w in workers_of.values()), workers_of
    a = json.loads((project.path / "serial.json").read_text())
    b = json.loads((project.path / "parallel.json").read_text())

    def metrics(doc: dict) -> dict:
        return {
            (s["scenario"], v): m["metrics"]["exact_match"]["value"]
            for s in doc["scenarios"]
            for v, m in s["variants"].items()
        }

    assert metrics(a) == metrics(b)
    assert len(b["scenarios"]) == 2
    assert sum(len(s["assertions"]) for s in b["scenarios"]) == 4
    parallel.stdout.fnmatch_lines(["*llmopt summary*"])



def test_a_variant_without_an_assertion_is_warned_about_and_counted(project: pytest.Pytester, write: WriteFile) -> None:
    spec = ECHO_SPEC.replace("  tuned: {}\n", "  tuned: {}\n  spare: {recipe: {template: \"{{ question }}!\"}}\n")
    write(project, "specs/echo.yaml", spec)
    line = spec.splitlines().index('  spare: {recipe: {template: "{{ question }}!"}}') + 1
    result = project.runpytest("specs")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"*VariantWarning: specs/echo.yaml:{line}:3: variant 'spare' has no assertion and no assertion compares"
            " against it (vs), so it is not evaluated*",
            "llmopt: 1 variant(s) not evaluated, no assertion names them (see the warnings): echo-demo::spare",
        ]
    )
    assert "variant 'baseline'" not in result.stdout.str()  # compared against: evaluated
    write(project, "specs/echo.yaml", ECHO_SPEC)
    clean = project.runpytest("specs")
    assert "VariantWarning" not in clean.stdout.str() and "not evaluated" not in clean.stdout.str()


def test_a_path_option_in_the_space_form_that_moves_the_rootdir_stops_with_advice(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/echo.yaml", ECHO_SPEC)
    outside = project.path.parent / f"{project.path.name}-out"
    outside.mkdir()
    (outside / "results.json").write_text("{}\n")
    target = f"../{outside.name}/results.json"
    result = project.runpytest("--llmopt-json", target)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --llmopt-json {target}: pytest took * for a test path while choosing the rootdir*: write --llmopt-json={target}"]
    )
    assert (outside / "results.json").read_text() == "{}\n"
    result = project.runpytest(f"--llmopt-json={target}")
    result.assert_outcomes(passed=2)
    assert json.loads((outside / "results.json").read_text())["scenarios"][0]["spec"] == "specs/echo.yaml"
    (project.path / "results.json").write_text("{}\n")  # inside the project: the rootdir does not move
    project.runpytest("--llmopt-json", "results.json").assert_outcomes(passed=2)


def _with_plugin(project: pytest.Pytester, write: WriteFile, module: str, text: str) -> Path:
    """The echo spec in a project whose ``llmopt_plugins`` names ``module`` (a package
    and its module, written with ``text``): the module's path."""
    package, name = module.split(".")
    project.makeini(f"[pytest]\nllmopt_plugins = {module}\nllmopt_cache_dir = .c\n")
    write(project, f"{package}/__init__.py", "")
    write(project, f"{package}/{name}.py", text)
    write(project, "specs/echo.yaml", ECHO_SPEC)
    return project.path / package / f"{name}.py"


def test_a_hook_function_without_the_hookimpl_mark_is_an_error_naming_it(project: pytest.Pytester, write: WriteFile) -> None:
    """pluggy passes over an unmarked function: its metrics would be missing without a word."""
    text = "import llmopt\n\n\ndef llmopt_metrics():\n    return []\n"
    path = _with_plugin(project, write, "unmarked_plugins.scores", text)
    result = project.runpytest("specs")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        f"*llmopt plugin 'unmarked_plugins.scores': llmopt_metrics ({path}:4) is not marked @llmopt.hookimpl,"
        " so llmopt would never call it*"
    ])
    write(project, "unmarked_plugins/scores.py", "import llmopt\n\n\n@llmopt.hookimpl\ndef llmopt_metrics():\n    return []\n")
    project.runpytest("specs").assert_outcomes(passed=2)


def test_a_plugin_with_a_syntax_error_is_one_line_naming_its_file_and_line(project: pytest.Pytester, write: WriteFile) -> None:
    path = _with_plugin(project, write, "broken_plugins.typo", "import llmopt\n\n\ndef llmopt_metrics(:\n    return []\n")
    result = project.runpytest("specs")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([f"*cannot import llmopt plugin 'broken_plugins.typo': {path}:4:*: SyntaxError: *"])
    assert "importlib" not in out and "Traceback" not in out and "_bootstrap" not in out
    write(project, "broken_plugins/typo.py", "import llmopt\n\nraise RuntimeError('no config here')\n")
    result = project.runpytest("specs")
    result.stdout.fnmatch_lines([f"*cannot import llmopt plugin 'broken_plugins.typo': {path}:3: RuntimeError: no config here*"])
    assert "importlib" not in result.stdout.str() and "_bootstrap" not in result.stdout.str()


def test_the_python_providers_case_and_a_metrics_sample_case_read_fields_alike(project: pytest.Pytester, write: WriteFile) -> None:
    project.makeini("[pytest]\nllmopt_plugins = same_plugins.fields\nllmopt_cache_dir = .c\n")
    write(project, "same_plugins/__init__.py", "")
    write(
        project,
        "same_plugins/fields.py",
        """
        import llmopt
        from llmopt.metric import case_metric

        @case_metric(name="answers_field")
        def answers_field(sample, args):
            "1.0 when the output is the case's answer field."
            assert sample.case["answer"] == sample.case.fields["answer"] == sample.case.get("answer")
            return sample.output == sample.case["answer"]

        @llmopt.hookimpl
        def llmopt_metrics():
            return [answers_field]
        """,
    )
    write(project, "specs/agent.py", "def answer(case):\n    assert isinstance(case, dict)\n    return case['answer']\n")
    spec = ECHO_SPEC.replace("provider: echo", "provider: python\n  id: agent.py:answer").replace(
        "  - metric: exact_match\n    variant: tuned\n    min: 0.7\n", "  - metric: answers_field\n    variant: tuned\n    min: 1.0\n"
    )
    write(project, "specs/echo.yaml", spec)
    result = project.runpytest("specs", "-k", "answers_field")
    result.assert_outcomes(passed=1, deselected=1)


def test_files_that_are_not_yaml_are_never_taken_for_lookalike_specs(pytester: pytest.Pytester) -> None:
    from llmopt.spec import lookalike

    (pytester.path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x00binary")
    (pytester.path / "notes.txt").write_text("llmpot: 1\n", encoding="utf-8")
    assert lookalike(pytester.path / "img.png") is None
    assert lookalike(pytester.path / "notes.txt") is None


def test_the_collector_thresholds_are_raised_while_the_run_evaluates_and_put_back_at_its_end(
    project: pytest.Pytester, write: WriteFile
) -> None:
    import gc

    from llmopt.engine.runner import OLD_THRESHOLD, YOUNG_THRESHOLD

    write(project, "specs/echo.yaml", ECHO_SPEC)
    write(project, "conftest.py", (
        "import gc, json\n"
        "def pytest_runtest_teardown(item):\n"
        "    with open('seen.jsonl', 'a') as out:\n"
        "        out.write(json.dumps(gc.get_threshold()) + '\\n')\n"
    ))
    before = gc.get_threshold()
    project.runpytest_inprocess("specs").assert_outcomes(passed=2)
    seen = [tuple(json.loads(line)) for line in (project.path / "seen.jsonl").read_text().splitlines()]
    assert seen == [(YOUNG_THRESHOLD, before[1], OLD_THRESHOLD)] * 2  # between the items too, to the run's end
    assert gc.get_threshold() == before

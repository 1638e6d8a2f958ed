"""`llmopt import promptfoo`: conversion, reporting, exit codes, and the specs it writes
load, validate and run under pytest (echo and python providers: no network)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from llmopt.cli import main
from llmopt.dataset._case import Case
from llmopt.importer import to_jinja
from llmopt.metric import Sample
from llmopt.metric._text import text_metrics
from llmopt.registry import create_registry
from llmopt.spec import load_scenario

FIXTURES = Path(__file__).parent / "promptfoo"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixtures in a fresh current folder."""
    shutil.copytree(FIXTURES, tmp_path / "pf")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*argv: str) -> int:
    return main(["import", "promptfoo", *argv])


def _registry_with_plugin(plugin: Path) -> Any:
    """The built-in registry plus the metrics of a written plugin module."""
    spec = importlib.util.spec_from_file_location("_test_promptfoo_plugin", plugin)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    registry = create_registry()
    registry.metrics.update({m.name: m for m in module.llmopt_metrics()})
    return registry


def _spec(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    return dict(YAML(typ="safe", pure=True).load(path.read_text()))


# --- Nunjucks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nunjucks", "jinja"),
    [
        ("Hi {{ name }}!", "Hi {{ name }}!"),
        ("{{ data | dump }} {{ data | dump(2) }}", "{{ data | tojson }} {{ data | tojson(indent=2) }}"),
        ('{% if a === "x" %}1{% elseif a !== "y" %}2{% endif %}', '{% if a == "x" %}1{% elif a != "y" %}2{% endif %}'),
        ("{{ items.length }} {{ s.trim() }} {{ s.toUpperCase() }}", "{{ (items | length) }} {{ s | trim }} {{ s | upper }}"),
        ("{% for k, v in obj %}{{ k }}{% endfor %}", "{% for k, v in (obj.items() if obj is mapping else obj) %}{{ k }}{% endfor %}"),
        ('{{ "a === b" }}{% raw %}{{ x.length }}{% endraw %}', '{{ "a === b" }}{% raw %}{{ x.length }}{% endraw %}'),
    ],
)
def test_nunjucks_becomes_jinja(nunjucks: str, jinja: str) -> None:
    converted = to_jinja(nunjucks)
    assert converted.problems == ()
    assert converted.text == jinja


@pytest.mark.parametrize(
    ("nunjucks", "problem"),
    [
        ('{% include "header.njk" %}', "the Nunjucks tag 'include' has no converted form"),
        ("{{ name | nl2br }}", "No filter named 'nl2br'"),
        ('{{ name.includes("a") }}', "the JavaScript method '.includes()' has no converted form"),
        ("{{ env.API_URL }}", "promptfoo's 'env' variable"),
    ],
)
def test_nunjucks_differences_are_reported(nunjucks: str, problem: str) -> None:
    assert any(problem in p for p in to_jinja(nunjucks).problems)


# --- per-case verdicts, as promptfoo decides them --------------------------------------

METRICS = {m.name: m for m in text_metrics()}


def _score(metric: str, output: str, args: Mapping[str, Any], fields: Mapping[str, Any] | None = None, **sample: Any) -> float:
    case = Case(id="c", fields=dict(fields or {}))
    return METRICS[metric].score(Sample(case=case, output=output, **sample), args)


@pytest.mark.parametrize(
    ("metric", "output", "args", "passes"),
    [
        ("equals", "Paris", {"value": "Paris"}, True),
        ("equals", "Paris.", {"value": "Paris"}, False),
        ("equals", '{"a": 1}', {"value": {"a": 1}}, True),
        ("equals", "42", {"value": 42}, True),
        ("substring", "The capital is Paris", {"value": "Paris"}, True),
        ("substring", "The capital is PARIS", {"value": "Paris"}, False),  # contains is case-sensitive
        ("substring", "The capital is PARIS", {"value": "paris", "ignore_case": True}, True),  # icontains
        ("substring", "red or blue", {"value": ["green", "blue"]}, True),  # contains-any
        ("substring", "red or blue", {"value": ["red", "green"], "all": True}, False),  # contains-all
        ("substring", "RED or BLUE", {"value": ["red", "blue"], "all": True, "ignore_case": True}, True),
        ("substring", "Madrid", {"value": "Madrid", "negate": True}, False),  # not-contains
        ("starts_with", "Yes, it is", {"value": "Yes"}, True),
        ("starts_with", " Yes", {"value": "Yes"}, False),
        ("matches", "order 1234", {"value": r"\d{4}"}, True),
        ("matches", "no digits", {"value": r"\d"}, False),
        ("is_json", '{"a": 1}', {}, True),
        ("is_json", '```json\n{"a": 1}\n```', {}, False),  # the whole output must be JSON
        ("is_json", '{"a": 1}', {"value": {"type": "object", "required": ["b"]}}, False),
        ("contains_json", 'Here: {"a": 1} done', {"value": {"required": ["a"]}}, True),
        ("contains_json", "no json here", {}, False),
        ("within_latency", "x", {"value": 0.5}, True),
    ],
)
def test_checks_decide_like_promptfoo(metric: str, output: str, args: dict[str, Any], passes: bool) -> None:
    assert METRICS[metric].check_args(args) == []
    assert _score(metric, output, args, latency_s=0.2) == float(passes)


def test_a_check_from_a_case_field_passes_cases_without_it() -> None:
    args = {"field": "check_contains"}
    assert _score("substring", "abc", args, {"check_contains": "b"}) == 1.0
    assert _score("substring", "abc", args, {"check_contains": "z"}) == 0.0
    assert _score("substring", "abc", args, {}) == 1.0
    assert _score("within_cost", "x", {"value": 0.001}, cost_usd=0.002) == 0.0
    assert "exactly one of" in METRICS["substring"].check_args({})[0]


class _Judge:
    def __init__(self, reply: str) -> None:
        self.reply, self.notes, self.asked = reply, [], []

    async def ask(self, judge: Any, messages: Sequence[Mapping[str, str]]) -> str:
        self.asked.append(messages)
        return self.reply

    def note(self, verdict: str, score: float, reason: str) -> None:
        self.notes.append((verdict, score))


@pytest.mark.parametrize(
    ("reply", "args", "passes"),
    [
        ("REASON: ok\nVERDICT: 1", {}, True),
        ("REASON: no\nVERDICT: 0", {}, False),
        ("VERDICT: 7", {"threshold": 0.7}, True),
        ("VERDICT: 6", {"threshold": 0.7}, False),
        ("VERDICT: 1", {"negate": True}, False),
    ],
)
def test_rubric_judges_pass_and_threshold(reply: str, args: dict[str, Any], passes: bool) -> None:
    rubric = METRICS["rubric"]
    full = {"value": "Is polite", "judge": {"provider": "echo"}, **args}
    assert rubric.check_args(full) == []
    judge = _Judge(reply)
    sample = Sample(case=Case(id="c"), output="Thanks!", input="Say thanks")
    assert asyncio.run(rubric.ascore(sample, full, judge)) == float(passes)
    assert "Is polite" in judge.asked[0][1]["content"]


# --- the command ----------------------------------------------------------------------


def test_full_config_converts_everything_and_validates(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("pf/full/promptfooconfig.yaml", "-o", "specs") == 0
    out = capsys.readouterr().out
    assert "everything converted" in out
    spec = work / "specs" / "echo-checks.yaml"
    assert spec.read_text().startswith("# Imported from pf/full/promptfooconfig.yaml")
    assert "# Everything converted." in spec.read_text()
    registry = _registry_with_plugin(work / "plugins" / "promptfoo_echo_checks.py")
    scenario = load_scenario(spec, registry)
    assert list(scenario.variants) == ["ask-1-mirror", "ask-1-app", "ask-2-mirror", "ask-2-app", "json-mirror", "json-app"]
    rows = [json.loads(line) for line in (work / "specs" / "echo-checks.cases.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["first", "second", "third"]  # inline, YAML file, CSV file
    assert rows[1]["question"] == "How long is the window?"  # a file:// var
    assert rows[0]["topic"] == "refunds"  # defaultTest vars
    metrics = [a["metric"] for a in _spec(spec)["assertions"]]
    assert metrics[:2] == ["within_latency", "within_cost"]  # defaultTest asserts, on every case
    assert "echo_checks_python_1" in metrics


def test_converted_config_runs_under_pytest(work: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmopt_plugins = plugins.promptfoo_echo_checks\nllmopt_cache_dir = .c\n")
    assert _run(str(work / "pf/full/promptfooconfig.yaml"), "-o", "specs") == 0
    assert (pytester.path / "plugins" / "promptfoo_echo_checks.py").is_file()  # at the project's root
    # a subprocess: this test run already imported another project's "plugins" package
    result = pytester.runpytest_subprocess("specs", "-p", "no:cacheprovider", "-rA")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) == 0
    lines = result.stdout.lines
    passed = {line.split(" ", 1)[1] for line in lines if line.startswith("PASSED ")}
    failed = {line.split(" ", 1)[1].split(" - ")[0] for line in lines if line.startswith("FAILED ")}
    node = "specs/echo-checks.yaml::echo-checks::"
    assert len([p for p in passed if p.startswith(f"{node}ask-1-mirror::")]) == 8  # every check
    assert not [f for f in failed if "ask-1-" in f]  # "About refunds: ... (n)" passes every check
    assert f"{node}json-mirror::substring(field='check_contains')>=1" in failed  # the JSON prompt lacks "news"
    assert f"{node}ask-2-app::matches>=1" in failed  # "One: ..." has no digit
    assert f"{node}json-app::echo_checks_python_1>=1" in passed  # the python assertion, via the plugin


def test_unconverted_parts_are_listed_with_file_and_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("pf/basic/promptfooconfig.yaml", "-o", "specs") == 3
    out = capsys.readouterr().out
    line = "pf/basic/promptfooconfig.yaml:22: tests[1].assert[1].type: javascript assertions are not converted"
    assert line in out
    header = (work / "specs" / "capital-cities.yaml").read_text().split("llmopt: 1")[0]
    assert "# Not converted (1):" in header and line in header


def test_every_unconverted_key_of_a_mixed_config(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("pf/mixed.yaml", "-o", "specs") == 3
    out = capsys.readouterr().out
    for expected in (
        "pf/mixed.yaml:31: scenarios: this config key has no llmopt form",
        "pf/mixed.yaml:5: providers[0].config.apiKey: keys are never written",
        "pf/mixed.yaml:5: providers[0].config.response_format: this provider setting has no llmopt form",
        "pf/mixed.yaml:8: providers[3]: provider 'vertex:gemini-pro' has no llmopt form",
        "pf/mixed.yaml:19: tests[0].assert[1].type: embedding similarity has no llmopt metric yet",
        "pf/mixed.yaml:30: tests[1].assert[1].transform: the check changes what is compared",
        "pf/mixed.yaml:18: tests[0].assert[0].weight: weights make promptfoo's test score",
    ):
        assert expected in out
    text = (work / "specs" / "mixed.yaml").read_text()
    assert "sk-secret-123" not in text
    spec = _spec(work / "specs" / "mixed.yaml")
    assert spec["model"] == {"provider": "openai", "id": "gpt-4o-mini", "base_url": "http://127.0.0.1:9/v1", "params": {"temperature": 0}}
    models = {name: v.get("model", spec["model"]) for name, v in spec["variants"].items()}
    assert models["claude-3-5-haiku-latest"]["provider"] == "anthropic"
    assert models["llama-3.1-8b-instant"]["base_url"] == "https://api.groq.com/openai/v1"
    assert models["llama-3.1-8b-instant"]["options"] == {"api_key_env": "GROQ_API_KEY"}
    load_scenario(work / "specs" / "mixed.yaml", create_registry())


def test_thresholds_weights_and_list_vars(work: Path) -> None:
    assert _run("pf/mixed.yaml", "-o", "specs") == 3
    spec = _spec(work / "specs" / "mixed.yaml")
    rows = [json.loads(x) for x in (work / "specs" / "mixed.cases.jsonl").read_text().splitlines()]
    assert [r["q"] for r in rows] == ["one", "two", "three"]  # q: [one, two] runs twice
    rubric, is_json, equals = spec["assertions"]
    assert rubric["metric"] == "rubric" and rubric["args"]["judge"] == {"provider": "openai", "id": "gpt-4o"}
    assert [r.get(rubric["args"]["field"]) for r in rows] == ["Answers one", "Answers two", None]
    # defaultTest.threshold 0.8, asked of the 2 of 3 cases that make the check
    assert rubric["min"] == pytest.approx(1 - 2 * 0.2 / 3, abs=1e-6) and rubric["min"] <= 1 - 2 * 0.2 / 3
    assert is_json["metric"] == "is_json"
    assert rows[0][is_json["args"]["field"]] == {"type": "object", "required": ["a"]}
    assert equals["metric"] == "equals" and equals["min"] == 0.0  # weight 0: reported, never failing


def test_threshold_option_and_baseline_choice(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("pf/full/promptfooconfig.yaml", "-o", "specs", "--baseline", "json-app", "--threshold", "0.5") == 0
    spec = _spec(work / "specs" / "echo-checks.yaml")
    assert next(iter(spec["variants"])) == "json-app" and spec["variants"]["json-app"] == {}
    assert spec["recipe"]["template"].startswith('{"topic"')
    assert spec["model"]["provider"] == "python"
    assert {a["min"] for a in spec["assertions"] if "value" in a.get("args", {}) or "args" not in a} == {0.5}
    assert "# Baseline: json-app" in (work / "specs" / "echo-checks.yaml").read_text()
    capsys.readouterr()
    assert _run("pf/full/promptfooconfig.yaml", "-o", "other", "--baseline", "nope") == 2
    assert "--baseline: no variant named 'nope' (variants: ask-1-mirror" in capsys.readouterr().err


def test_unreadable_config_exits_2_and_writes_nothing(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("pf/broken.yaml", "-o", "specs") == 2
    err = capsys.readouterr().err
    assert "pf/broken.yaml:" in err and "YAML syntax error" in err
    assert _run("pf/missing.yaml", "-o", "specs") == 2
    assert "pf/missing.yaml: cannot read" in capsys.readouterr().err
    assert not (work / "specs").exists()


def test_an_earlier_import_is_kept_without_force(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("pf/full/promptfooconfig.yaml", "-o", "specs") == 0
    assert _run("pf/full/promptfooconfig.yaml", "-o", "specs") == 2
    assert "already there: specs/echo-checks.yaml" in capsys.readouterr().err
    assert _run("pf/full/promptfooconfig.yaml", "-o", "specs", "--force") == 0


def test_written_spec_passes_llmopt_validate(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("pf/mixed.yaml", "-o", "specs") == 3
    capsys.readouterr()
    assert main(["validate", "specs/mixed.yaml"]) == 0
    assert "specs/mixed.yaml: ok (mixed: 3 variants, 9 checks)" in capsys.readouterr().out

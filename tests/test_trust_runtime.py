"""One bad case costs one case; templates are bounded in time and size (issue 14).

Each way a single case can blow up (a template that divides by zero, includes a file,
builds a huge range, recurses, computes a huge power; a lone surrogate in a field; a
project plugin's metric that raises) becomes that case's error, in one line naming the
spec and the case. The variant's other cases are called, scored and paid for, and
every assertion still gets its verdict.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest
from fakes.openai_server import FakeOpenAI

from llmopt.errors import RenderError
from llmopt.recipe._render import Renderer, RenderLimits
from llmopt.spec._model import RecipeSpec

KEY = "sk-test-trust0runtime0key0123456789"

SPEC = """\
llmopt: 1
scenario: trust
task:
  id: id
  expected: answer
  {cases}
recipe:
  template: {template}
model:
  provider: openai
  id: gpt-4o-mini
  base_url: {base_url}
  max_retries: 0
assertions:
  - metric: exact_match
    min: 0.5
    max_error_rate: 0.2
  - metric: contains
    min: 0.5
    max_error_rate: 0.2
"""

GOOD = ("alpha", "bravo", "charlie", "delta", "echo")
INLINE = "cases:\n" + "".join(f'    - {{id: {w}, question: "{w}", answer: "{w}"}}\n' for w in GOOD)

#: (template, the bad case's question as YAML): the bad case's question is "x".
TEMPLATES = {
    "division by zero": "\"{% if question == 'x' %}{{ 1/0 }}{% endif %}{{ question }}\"",
    "include": "\"{% if question == 'x' %}{% include 'x' %}{% endif %}{{ question }}\"",
    "huge range": "\"{% if question == 'x' %}{{ range(10**6) | join(',') }}{% endif %}{{ question }}\"",
    "recursive macro": (
        "\"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{% if question == 'x' %}{{ f(0) }}{% endif %}{{ question }}\""
    ),
    "huge power": "\"{% if question == 'x' %}{{ 10**5000 }}{% endif %}{{ question }}\"",
    "huger power": "\"{% if question == 'x' %}{{ 10**(10**9) }}{% endif %}{{ question }}\"",
    "repeated string": "\"{% if question == 'x' %}{{ 'ab' * 10**9 }}{% endif %}{{ question }}\"",
}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeOpenAI() as server:
        yield server


def _run(pytester: pytest.Pytester, fake: FakeOpenAI, cases: str, template: str = '"{{ question }}"') -> Any:
    pytester.makeini("[pytest]\nllmopt_cache_dir = .c\n")
    spec = SPEC.format(cases=cases, template=template, base_url=fake.base_url)
    (pytester.path / "specs").mkdir(exist_ok=True)
    (pytester.path / "specs" / "bad.yaml").write_text(spec, encoding="utf-8")
    started = time.monotonic()
    result = pytester.runpytest("specs", "--llmopt-json", "r.json", "--llmopt-report", "r.html", "--llmopt-report", "r.md")
    assert time.monotonic() - started < 30  # nothing hangs
    return result


def _check_one_case_lost(pytester: pytest.Pytester, result: Any, calls: int) -> str:
    """The bad case's error; every other case scored, both assertions passed, spend counted."""
    result.assert_outcomes(passed=2)
    variant = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["scenarios"][0]["variants"]["default"]
    assert (variant["n"], variant["errors"]) == (6, 1)
    bad = [c for c in variant["cases"] if c["error"]]
    good = [c for c in variant["cases"] if not c["error"]]
    assert [c["id"] for c in bad] == ["x"]
    assert sorted(c["id"] for c in good) == sorted(GOOD)
    assert all(c["scores"] == {"exact_match": 1.0, "contains": 1.0} for c in good)
    assert variant["usage"]["calls"] == calls and variant["usage"]["cost_usd"] > 0
    result.stdout.fnmatch_lines([f"spent $* on {calls} calls;*"])
    error = bad[0]["error"]
    assert "\n" not in error and "bad.yaml" in error and "case 'x'" in error, error
    assert "Traceback" not in result.stdout.str()
    return str(error)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_a_template_that_fails_for_one_case_costs_that_case(
    pytester: pytest.Pytester, fake: FakeOpenAI, name: str
) -> None:
    cases = INLINE + '    - {id: x, question: "x", answer: "x"}\n'
    error = _check_one_case_lost(pytester, _run(pytester, fake, cases, TEMPLATES[name]), calls=5)
    assert "recipe.template" in error
    assert fake.requests == 5


def test_a_lone_surrogate_in_a_jsonl_row_costs_that_case(pytester: pytest.Pytester, fake: FakeOpenAI) -> None:
    rows = [json.dumps({"id": w, "question": w, "answer": w}) for w in GOOD]
    rows.append('{"id": "x", "question": "x\\ud800", "answer": "x"}')
    (pytester.path / "specs").mkdir()
    (pytester.path / "specs" / "cases.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    error = _check_one_case_lost(pytester, _run(pytester, fake, "dataset: cases.jsonl"), calls=5)
    assert "lone surrogate (\\ud800 at character 2)" in error, error
    for name in ("r.json", "r.html"):
        assert "\\ud800" in (pytester.path / name).read_text(encoding="utf-8")  # written, the escape shown


FLAKY_PLUGIN = """\
import llmopt
from llmopt.metric import case_metric


@case_metric(name="flaky")
def flaky(sample, args):
    if sample.case.id == "x":
        raise KeyError("no such thing")
    return 1.0


@llmopt.hookimpl
def llmopt_metrics():
    return [flaky]
"""


def test_a_plugin_metric_that_raises_for_one_case_costs_that_case_and_names_its_line(
    pytester: pytest.Pytester, fake: FakeOpenAI
) -> None:
    plugins = pytester.path / "plugins"
    plugins.mkdir()
    (plugins / "__init__.py").write_text("", encoding="utf-8")
    (plugins / "flaky.py").write_text(FLAKY_PLUGIN, encoding="utf-8")
    (pytester.path / "specs").mkdir()
    cases = INLINE + '    - {id: x, question: "x", answer: "x"}\n'
    spec_text = SPEC + "  - metric: flaky\n    min: 0.5\n    max_error_rate: 0.2\n"
    pytester.makeini("[pytest]\nllmopt_plugins = plugins.flaky\nllmopt_cache_dir = .c\n")
    (pytester.path / "specs" / "bad.yaml").write_text(
        spec_text.format(cases=cases, template='"{{ question }}"', base_url=fake.base_url), encoding="utf-8"
    )
    result = pytester.runpytest("specs", "--llmopt-json", "r.json")
    result.assert_outcomes(passed=3)
    variant = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["scenarios"][0]["variants"]["default"]
    bad = [c for c in variant["cases"] if c["error"]]
    assert (variant["n"], variant["errors"], [c["id"] for c in bad]) == (6, 1, ["x"])
    assert variant["usage"]["calls"] == 6 and variant["usage"]["cost_usd"] > 0  # the bad case's call was paid for
    error = bad[0]["error"]
    assert "\n" not in error and "bad.yaml" in error and "case 'x'" in error, error
    assert f"{plugins / 'flaky.py'}:8" in error and "KeyError" in error, error


# -- bounds on rendering (item 14) ------------------------------------------------------------


def _recipe(template: str) -> RecipeSpec:
    return RecipeSpec(template=template)


def test_a_render_longer_than_the_size_limit_is_a_render_error() -> None:
    renderer = Renderer(RenderLimits(max_chars=1_000, max_seconds=5.0))
    assert renderer.render(_recipe("{{ 'a' * 900 }}"), {}, "w").user == "a" * 900
    with pytest.raises(RenderError, match=r"w: recipe\.template: the rendered text is longer than 1,000 characters"):
        renderer.render(_recipe("{% for i in range(100) %}{{ 'abcdefghij' * 2 }}{% endfor %}"), {}, "w")


@pytest.mark.parametrize(
    "template, plain",
    [
        ("{{ question }}", True),
        ("Context:\n{{ context }}\n\nQuestion: {{ question }}\nAnswer:", True),
        ("{{- question -}} {# a comment #}\n", True),
        ("no variables at all", True),
        ("{{ question | upper }}", False),
        ("{{ case.question }}", False),
        ("{{ a ~ b }}", False),
        ("{{ 'literal' }}", False),
        ("{{ f() }}", False),
        ("{% for i in x %}{{ i }}{% endfor %}", False),
        ("{% set y = 1 %}{{ y }}", False),
        ("{% if x %}{{ x }}{% endif %}", False),
    ],
)
def test_templates_of_text_and_bare_variables_render_as_jinja_does_without_it(template: str, plain: bool) -> None:
    from llmopt.recipe._bounds import text_and_names
    from llmopt.recipe._render import _environment

    assert (text_and_names(_environment().parse(template)) is not None) is plain
    values = {"question": "Why?\n", "context": ["a", 1, None], "x": [1, 2], "a": 1.5, "b": {"k": "v"}, "f": dict,
              "case": {"question": "q"}}
    by_jinja = _environment().from_string(template).render(**values).strip()
    assert Renderer().render(_recipe(template), values, "w").user == by_jinja


def test_a_bare_variable_longer_than_the_size_limit_is_a_render_error() -> None:
    renderer = Renderer(RenderLimits(max_chars=1_000, max_seconds=5.0))
    assert renderer.render(_recipe("Q: {{ question }}"), {"question": "a" * 990}, "w").user == "Q: " + "a" * 990
    with pytest.raises(RenderError, match=r"w: recipe\.template: the rendered text is longer than 1,000 characters"):
        renderer.render(_recipe("Q: {{ question }}"), {"question": "a" * 998}, "w")
    with pytest.raises(RenderError, match=r"'missing' is undefined \(available: question\)"):
        renderer.render(_recipe("{{ missing }}"), {"question": "q"}, "w")


def test_the_size_limit_stops_a_render_before_it_fills_the_memory() -> None:
    renderer = Renderer(RenderLimits(max_chars=10_000, max_seconds=30.0))
    started = time.monotonic()
    with pytest.raises(RenderError, match="longer than 10,000 characters"):
        renderer.render(_recipe("{% for i in range(100000) %}{% for j in range(100000) %}xy{% endfor %}{% endfor %}"), {}, "w")
    assert time.monotonic() - started < 2


def test_a_render_slower_than_the_time_limit_is_a_render_error() -> None:
    renderer = Renderer(RenderLimits(max_chars=10**9, max_seconds=0.3))
    slow = "{% for i in range(100000) %}{% for j in range(100000) %}{{ (i * j) % 7 }}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"w: recipe\.template: rendering took longer than 0\.3 s"):
        renderer.render(_recipe(slow), {}, "w")
    assert time.monotonic() - started < 3


def test_a_loop_of_filters_without_output_is_stopped_by_the_time_limit() -> None:
    renderer = Renderer(RenderLimits(max_chars=10**9, max_seconds=0.3))
    quiet = "{% for i in range(100000) %}{% for j in range(100000) %}{% set _ = [i, j] | length %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(RenderError, match="rendering took longer than 0.3 s"):
        renderer.render(_recipe(quiet), {}, "w")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "template, message",
    [
        ("{{ 10**(10**9) }}", "too large"),
        ("{{ 2**(2**40) }}", "too large"),
        ("{{ 'ab' * 10**9 }}", "too large"),
        ("{{ [1] * 10**9 }}", "too large"),
        ("{{ range(10**6) | join(',') }}", "(?i)range too big"),
    ],
)
def test_huge_values_are_refused_at_once(template: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match=message):
        Renderer().render(_recipe(template), {}, "w")
    assert time.monotonic() - started < 1


def test_ordinary_arithmetic_and_repetition_still_render() -> None:
    out = Renderer().render(_recipe("{{ 2**10 }} {{ '-' * 3 }} {{ 7 * 6 }} {{ 10**50 }} {{ [0] * 2 }}"), {}, "w").user
    assert out == f"1024 --- 42 {10**50} [0, 0]"


def test_ctrl_c_interrupts_a_render_at_once() -> None:
    import _thread
    import threading

    renderer = Renderer(RenderLimits(max_chars=10**9, max_seconds=60.0))
    slow = "{% for i in range(100000) %}{% for j in range(100000) %}{{ i + j }}{% endfor %}{% endfor %}"
    timer = threading.Timer(0.3, _thread.interrupt_main)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            renderer.render(_recipe(slow), {}, "w")
    finally:
        timer.cancel()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("a 5,000-digit integer", '{"id": "x", "question": ' + "9" * 5000 + ', "answer": "x"}'),
        ("deep nesting", '{"id": "x", "question": ' + "[" * 3000 + "]" * 3000 + ', "answer": "x"}'),
        ("broken JSON", '{"id": "x", "question": '),
    ],
)
def test_an_unreadable_jsonl_row_costs_its_own_case_only(tmp_path: Any, name: str, row: str) -> None:
    from llmopt.engine.runner import Runner
    from llmopt.registry import create_registry
    from llmopt.spec import load_scenario

    good = [json.dumps({"id": w, "question": w, "answer": w}) for w in GOOD]
    (tmp_path / "cases.jsonl").write_text("\n".join([*good[:2], row, *good[2:]]) + "\n", encoding="utf-8")
    (tmp_path / "s.yaml").write_text(
        "llmopt: 1\nscenario: rows\ntask: {dataset: cases.jsonl, id: id, expected: answer}\n"
        'recipe: {template: "{{ question }}"}\nmodel: {provider: echo}\n'
        "assertions:\n  - {metric: exact_match, min: 0.5, max_error_rate: 0.2}\n",
        encoding="utf-8",
    )
    registry = create_registry(entry_points=False)
    result = Runner(registry).evaluate(load_scenario(tmp_path / "s.yaml", registry), "default")
    assert [c.id for c in result.cases] == ["alpha", "bravo", "line 3", "charlie", "delta", "echo"]
    bad = [c for c in result.cases if c.error is not None]
    assert [c.id for c in bad] == ["line 3"]
    assert "s.yaml [rows::default] case 'line 3': cases.jsonl:3: invalid JSON" in (bad[0].error or "")
    assert "\n" not in (bad[0].error or "")
    assert result.metrics["exact_match"].n == 5 and result.metrics["exact_match"].value == 1.0

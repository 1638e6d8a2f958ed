"""``load_scenario(deep=True)`` (``llmopt validate``): what reading a variant's data finds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmopt.errors import SpecError
from llmopt.registry import Registry, create_registry
from llmopt.spec import load_scenario
from llmopt.spec._deep import undeclared_variables

SPEC = """\
llmopt: 1
scenario: deep
task:
  dataset: data.jsonl
  id: id
  expected: answer
recipe:
  template: |
    Answer briefly.
    Question: {{ question }}
model:
  provider: echo
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    return create_registry(entry_points=False)


def _rows(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _project(tmp_path: Path, spec: str, data: str) -> Path:
    (tmp_path / "data.jsonl").write_text(data, encoding="utf-8")
    path = tmp_path / "spec.yaml"
    path.write_text(spec, encoding="utf-8")
    return path


def _deep(path: Path, registry: Registry) -> str:
    with pytest.raises(SpecError) as info:
        load_scenario(path, registry, display_path="spec.yaml", deep=True)
    return str(info.value)


GOOD = _rows({"id": "a", "question": "q1", "answer": "x"}, {"id": "b", "question": "q2", "answer": "y"})


def test_a_sound_spec_passes_deep_checks(tmp_path: Path, registry: Registry) -> None:
    scenario = load_scenario(_project(tmp_path, SPEC, GOOD), registry, deep=True)
    assert list(scenario.variants) == ["default"]


def test_undefined_template_variable_names_the_line_and_the_closest_field(tmp_path: Path, registry: Registry) -> None:
    path = _project(tmp_path, SPEC.replace("{{ question }}", "{{ questoin }}"), GOOD)
    assert load_scenario(path, registry).id == "deep"  # collection does not read the dataset
    assert _deep(path, registry) == (
        "1 problem in spec:\n  spec.yaml:8:13: recipe.template: template line 2: undefined variable 'questoin': "
        "no case has that field (did you mean 'question'? fields: answer, id, question)"
    )


def test_a_variable_some_cases_lack_names_them(tmp_path: Path, registry: Registry) -> None:
    data = _rows({"id": "a", "question": "q", "answer": "x"}, {"id": "b", "answer": "y"})
    assert _deep(_project(tmp_path, SPEC, data), registry) == (
        "1 problem in spec:\n  spec.yaml:8:13: recipe.template: template line 2: variable 'question' is missing "
        "from 1 of 2 cases ('b')"
    )


def test_context_recipe_fields_and_template_variables_are_known(tmp_path: Path, registry: Registry) -> None:
    template = "{% set x = 1 %}{{ x }} {{ question }} {{ context }} {% for i in range(2) %}{{ i }}{% endfor %}"
    path = _project(tmp_path, SPEC.replace("Question: {{ question }}", template), GOOD)
    assert load_scenario(path, registry, deep=True).id == "deep"


def test_malformed_rows_missing_fields_and_duplicate_ids_are_listed(tmp_path: Path, registry: Registry) -> None:
    data = '{"id": "a", "question": "q"}\n{"id": "b", "question": \n{"id": "a", "question": "q"}\n'
    assert _deep(_project(tmp_path, SPEC, data), registry) == (
        "3 problems in spec:\n"
        "  spec.yaml:4:12: task.dataset: data.jsonl:1: missing field 'answer' (task.expected) in every row (2 rows)\n"
        "  spec.yaml:4:12: task.dataset: data.jsonl:2: invalid JSON: Expecting value (column 25)\n"
        "  spec.yaml:4:12: task.dataset: data.jsonl:3: duplicate id 'a' (first at line 1)"
    )


def test_a_missing_expected_field_is_one_problem_however_many_rows(tmp_path: Path, registry: Registry) -> None:
    data = _rows(*({"id": str(i), "question": "q"} for i in range(300)))
    text = _deep(_project(tmp_path, SPEC, data), registry)
    assert text == (
        "1 problem in spec:\n"
        "  spec.yaml:4:12: task.dataset: data.jsonl:1: missing field 'answer' (task.expected) in every row (300 rows)"
    )


def test_inline_cases_are_checked_too(tmp_path: Path, registry: Registry) -> None:
    spec = SPEC.replace("  dataset: data.jsonl\n", "  cases: [{id: a, question: q, answer: x}, {id: a, question: r, answer: y}]\n")
    assert "duplicate id 'a' (first at task.cases[0])" in _deep(_project(tmp_path, spec, ""), registry)


PYTHON = SPEC.replace("  provider: echo\n", "  provider: python\n  id: {target}\n")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("app/bot.py:answr", "python provider: app/bot.py defines no function 'answr' (did you mean 'answer'? functions: answer)"),
        ("app.bot:answr", "python provider: app.bot defines no function 'answr' (did you mean 'answer'? functions: answer)"),
        ("app/broken.py:answer", "python provider: app/broken.py:2: syntax error: invalid syntax"),
    ],
)
def test_a_missing_python_function_is_named_without_internal_modules(
    tmp_path: Path, registry: Registry, target: str, message: str
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "bot.py").write_text("import os\n\ndef answer(prompt):\n    return prompt\n", encoding="utf-8")
    (tmp_path / "app" / "broken.py").write_text("def answer(prompt):\n    return prompt +\n", encoding="utf-8")
    text = _deep(_project(tmp_path, PYTHON.format(target=target), GOOD), registry)
    assert text == f"1 problem in spec:\n  spec.yaml:13:7: model.id: {message}"
    assert "_llmopt_user" not in text


def test_a_present_python_function_or_one_outside_the_project_passes(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "bot.py").write_text("from helpers import *\n", encoding="utf-8")
    for target in ("app/bot.py:anything", "json:dumps"):
        assert load_scenario(_project(tmp_path, PYTHON.format(target=target), GOOD), registry, deep=True).id == "deep"


def test_undeclared_variables_with_their_lines() -> None:
    source = "a {{ x }}\n{% for y in items %}{{ y }}{{ z.w }}{% endfor %}\n{{ x }} {{ range(3) | list }}"
    assert undeclared_variables(source) == [("x", 1), ("items", 2), ("z", 2)]
    assert undeclared_variables("{{ x }") == []

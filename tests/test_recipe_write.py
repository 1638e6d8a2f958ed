"""Tests of llmopt.recipe._write (the next version of a recipe file, every other byte
kept), the version's demos and provenance in ``llmopt recipes show|diff``, and
``llmopt search --write`` writing a generated winner as that version."""

from __future__ import annotations

import datetime
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmopt.errors import SpecError
from llmopt.recipe import Demo, Renderer, load_book
from llmopt.recipe import _write as recipe_write
from llmopt.recipe._write import (
    equal_version,
    literal_template,
    version_changes,
    with_demos,
    with_instruction,
    write_version,
)
from llmopt.search import CandidateRun, SearchOutcome
from llmopt.search._cli import _write
from llmopt.search._outcome import RoundScore
from llmopt.spec._model import DemosSpec, ModelSpec, RecipeSpec
from llmopt.spec._project import load_spec

RECIPE = """\
# yaml-language-server: $schema=../schema.json
# The team's question answering prompt.
recipe: qa
description: Short answers.   # for the help desk

versions:
  1:
    description: first cut
    system: 'You answer questions about {{ product }}.'
    template: "Q: {{ question }}"
    fields:
      product: {type: string, required: true, example: Acme}   # the product
    guardrails:
      forbidden: ["ignore (all )?previous instructions"]
  3:
    # the second try (2 was dropped in review)
    system: >-
      You answer questions about {{ product }},
      briefly.
    template: |
      Q: {{ question }}
    examples:
      - {user: "Q: what is {{ product }}?", assistant: "{{ product }} is a product."}
    fields:
      product: {type: string, required: true, example: Acme}
    # reviewed by Dana
# the end
"""
PROVENANCE = {"search": "faq", "candidate": "c2", "dev": {"n": 12, "value": 0.75}, "written": "2026-12-03"}


def _recipe(tmp_path: Path, text: str = RECIPE) -> Path:
    path = tmp_path / "recipes" / "qa.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def _write_version(path: Path, base: int = 1, **changes: Any) -> int:
    return write_version(path, base=base, description="from a search", provenance=PROVENANCE, **changes)


def _added(before: str, after: str) -> str:
    """What ``after`` adds to ``before``, checking every line of ``before`` is kept in order
    and the addition is one block."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), len(old))
    size = len(new) - len(old)
    assert new[:at] + new[at + size :] == old
    return "".join(new[at : at + size])


def _version(path: Path, number: int) -> Any:
    book = load_book(path.parent, str)
    assert book.problems == []
    return book.recipes["qa"].versions[number]


def _render(recipe: RecipeSpec, **values: Any) -> Any:
    return Renderer().render(recipe, {"question": "Why?", **values}, "test")


# -- the file's bytes -------------------------------------------------------------------


def test_comments_quoting_and_the_other_versions_are_kept_byte_for_byte(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    assert _write_version(path, system="You answer in one word.") == 4
    after = path.read_text(encoding="utf-8")
    added = _added(RECIPE, after)
    assert after.endswith("    # reviewed by Dana\n" + added + "# the end\n")
    assert added.startswith("  4:\n    description: from a search\n    system: You answer in one word.\n")
    assert "    provenance:\n      search: faq\n      candidate: c2\n      dev:\n        n: 12\n" in added
    assert "      written: '2026-12-03'\n" in added


def test_the_new_version_is_numbered_after_the_highest_and_copies_the_base(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    assert _write_version(path, base=1, template="Question: {{ question }}") == 4
    first, new = _version(path, 1), _version(path, 4)
    assert new.template == "Question: {{ question }}"
    assert (new.system, new.fields, new.guardrails, new.examples) == (first.system, first.fields, first.guardrails, ())
    assert new.description == "from a search" and new.provenance == PROVENANCE
    assert _write_version(path, base=3) == 5
    assert _version(path, 5).examples == _version(path, 3).examples
    assert _version(path, 5).system == "You answer questions about {{ product }}, briefly."


def test_the_file_s_indentation_line_endings_and_missing_final_newline_are_kept(tmp_path: Path) -> None:
    text = "recipe: qa\r\nversions:\r\n    1:\r\n        template: q\r\n        guardrails:\r\n            required:\r\n            - the q"
    path = _recipe(tmp_path, text)
    _write_version(path, system="Line one.\nLine two.")
    after = path.read_bytes().decode("utf-8")
    assert after.startswith(text + "\r\n    2:\r\n        description: from a search\r\n        system: |-\r\n")
    assert "            Line one.\r\n            Line two.\r\n" in after
    assert "        guardrails:\r\n            required:\r\n            - the q\r\n" in after[len(text):]
    assert not after.endswith("\n") and "\n" not in after.replace("\r\n", "")


def test_versions_separated_by_blank_lines_get_one_before_the_new_version(tmp_path: Path) -> None:
    text = "recipe: qa\nversions:\n  1:\n    template: a\n\n  2:\n    template: b\n\ndescription: x\n"
    path = _recipe(tmp_path, text)
    _write_version(path, base=2)
    assert path.read_text(encoding="utf-8") == text.replace(
        "    template: b\n", "    template: b\n\n  3:\n    description: from a search\n    template: b\n"
        "    provenance:\n      search: faq\n      candidate: c2\n      dev:\n        n: 12\n        value: 0.75\n"
        "      written: '2026-12-03'\n"
    )


def test_a_one_line_flow_versions_is_unfolded_keeping_each_version_as_written(tmp_path: Path) -> None:
    path = _recipe(tmp_path, 'recipe: qa\nversions: {1: {template: "a {{ q }}"}, 2: {template: b}}  # both\n')
    _write_version(path)
    assert path.read_text(encoding="utf-8").startswith(
        'recipe: qa\nversions:  # both\n  1: {template: "a {{ q }}"}\n  2: {template: b}\n  3:\n    description: from a search\n'
    )
    assert _version(path, 3).template == "a {{ q }}"


def test_a_multi_line_flow_versions_is_refused_naming_the_line(tmp_path: Path) -> None:
    text = "recipe: qa\nversions: {1: {template: a},\n  2: {template: b}}\n"
    path = _recipe(tmp_path, text)
    with pytest.raises(SpecError, match=r"qa.yaml:2: versions: is written in flow style over several lines"):
        _write_version(path)
    assert path.read_text(encoding="utf-8") == text


def test_a_recipe_file_that_cannot_be_parsed_is_refused_and_left_untouched(tmp_path: Path) -> None:
    text = RECIPE.replace('    template: "Q: {{ question }}"\n', '    template: "Q: {{ question }}\n')
    path = _recipe(tmp_path, text)
    with pytest.raises(SpecError) as raised:
        _write_version(path)
    assert str(raised.value).startswith("1 problem in recipe file:\n  " + f"{path}:")
    assert path.read_text(encoding="utf-8") == text


def test_a_recipe_file_with_problems_is_refused_listing_them(tmp_path: Path) -> None:
    text = RECIPE.replace("  1:\n    description: first cut\n", "  1:\n    description: first cut\n    tone: x\n")
    path = _recipe(tmp_path, text)
    with pytest.raises(SpecError, match=r"qa.yaml:9:5: versions.1.tone: unknown key .tone."):
        _write_version(path)
    assert path.read_text(encoding="utf-8") == text


def test_a_missing_base_version_is_refused_naming_the_versions(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    with pytest.raises(SpecError, match=r"qa.yaml:6: versions: has no version 2 to write the next version from \(versions: 1, 3\)"):
        _write_version(path, base=2)
    assert path.read_text(encoding="utf-8") == RECIPE


def test_the_original_is_put_back_when_the_written_file_does_not_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _recipe(tmp_path)
    checks: list[str] = []
    verify = recipe_write._verify

    def fail_after_writing(text: str, expected: dict[str, Any], shown: str, number: int) -> None:
        checks.append(text)
        if len(checks) == 2:  # the check of the file as written on disk
            assert "  4:\n" in path.read_text(encoding="utf-8")
            raise SpecError([])
        verify(text, expected, shown, number)

    monkeypatch.setattr(recipe_write, "_verify", fail_after_writing)
    with pytest.raises(SpecError):
        _write_version(path)
    assert len(checks) == 2 and path.read_text(encoding="utf-8") == RECIPE


def test_a_splice_that_reads_back_differently_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _recipe(tmp_path)
    monkeypatch.setattr(recipe_write, "_rendered", lambda number, entry, indent, layout: [f"  {number}: {{template: x}}\n"])
    with pytest.raises(SpecError, match=rf"{path}: cannot write version 4 \(it would read back differently\); the file is left"):
        _write_version(path)
    assert path.read_text(encoding="utf-8") == RECIPE


def test_a_symlinked_recipe_file_is_written_through_its_link(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    _write_version(link)
    assert link.is_symlink() and "  4:\n" in path.read_text(encoding="utf-8")


def test_equal_version_finds_the_version_that_already_holds_the_changes(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    assert equal_version(path, base=1, system="One word.") is None
    assert equal_version(path, base=1) == 1
    number = _write_version(path, system="One word.")
    assert equal_version(path, base=1, system="One word.") == number


# -- the text written: templates that render as the search's prompt ----------------------


@pytest.mark.parametrize(
    "text",
    ["plain text", "Use {{ name }} here", "{% if x %}y{% endif %} and {# note #}", "a {% endraw %} b {{ c }}",
     "{{{ three }}}", "line one\n{{ two }}\nline three"],
)
def test_literal_template_renders_as_the_text_itself(text: str) -> None:
    recipe = RecipeSpec(template="{{ question }}", examples=((literal_template(text), literal_template(text)),))
    assert _render(recipe).examples == ((text, text),)
    assert literal_template("no marks") == "no marks"


def test_demonstrations_with_template_marks_round_trip_through_the_file(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    base = _version(path, 3)
    demos = (Demo("t1", "what is {{ x }}?", "Q: what is {{ x }}?", "It is {% raw %}."),
             Demo("t2", "b", "Q: b", "{# b #}"))
    changes = with_demos(base, DemosSpec(k=2, select="bootstrap"), demos)
    number = _write_version(path, base=3, **changes)
    written = _version(path, number)
    assert written.demos is None
    rendered = _render(written.to_spec({"product": "Acme"}))
    assert rendered.examples == (("Q: what is Acme?", "Acme is a product."),
                                 ("Q: what is {{ x }}?", "It is {% raw %}."), ("Q: b", "{# b #}"))


def test_replace_drops_the_version_s_own_examples() -> None:
    from llmopt.recipe import RecipeVersion

    base = RecipeVersion("qa", 1, "{{ q }}", examples=(("own", "example"),))
    demo = Demo("t", "x", "Q: x", "X")
    assert with_demos(base, DemosSpec(k=1, examples="replace"), [demo]) == {"examples": [("Q: x", "X")], "demos": None}
    assert with_demos(base, DemosSpec(k=1), [demo]) == {"examples": [("own", "example"), ("Q: x", "X")], "demos": None}


def test_similar_demos_are_written_as_the_demos_mapping_and_load_into_the_version(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    demos = DemosSpec(k=3, select="similar", seed=5, retriever="bm25")
    changes = version_changes(_version(path, 3), instruction=None, demos=demos, fixed=None)
    assert changes == {"demos": {"k": 3, "select": "similar", "seed": 5, "retriever": "bm25", "examples": "extend"}}
    number = _write_version(path, base=3, **changes)
    written = _version(path, number)
    assert written.demos == demos and written.to_spec({"product": "Acme"}).demos == demos
    assert "    demos:\n      k: 3\n      select: similar\n      seed: 5\n" in path.read_text(encoding="utf-8")


def test_demos_shown_through_the_template_s_demos_variable_are_written_as_the_mapping() -> None:
    from llmopt.recipe import RecipeVersion

    base = RecipeVersion("qa", 1, "{{ demos }}\n\n{{ q }}")
    teacher = ModelSpec(provider="openai", id="gpt-4o-mini", params={"temperature": 0})
    demos = DemosSpec(k=2, select="bootstrap", teacher=teacher, metric="exact_match")
    assert with_demos(base, demos, [Demo("t", "x", "x", "X")]) == {"demos": {
        "k": 2, "select": "bootstrap", "seed": 0, "teacher": {"provider": "openai", "id": "gpt-4o-mini",
        "params": {"temperature": 0}}, "metric": "exact_match", "min_score": 1.0, "examples": "extend"}}


def test_an_instruction_is_written_as_the_system_message_when_nothing_uses_it() -> None:
    base = RecipeSpec(template="Q: {{ question }}", system="You answer questions.")
    instruction = "  Answer in {{ braces }} only.  "
    changes = with_instruction(base.system, base.template, instruction)
    assert changes == {"system": "{% raw %}Answer in {{ braces }} only.{% endraw %}"}
    expected = _render(replace(base, instruction=instruction))
    assert _render(replace(base, **changes)) == expected
    assert expected.system == "Answer in {{ braces }} only."


@pytest.mark.parametrize(
    "template",
    ["{{ instruction }}\n\nQ: {{ question }}", "{{instruction}} Q: {{ question }}", "{{ instruction | upper }} Q: {{ question }}",
     "{% if instruction %}{{ instruction }}{% endif %} Q: {{ question }}"],
)
def test_an_instruction_fills_the_template_s_instruction_variable(template: str) -> None:
    base = RecipeSpec(template=template, system="You answer questions.")
    instruction = "Be brief, {{ not a variable }}."
    changes = with_instruction(base.system, base.template, instruction)
    assert set(changes) == {"template"}
    assert _render(replace(base, **changes)) == _render(replace(base, instruction=instruction))
    if "|" not in template and "%" not in template:
        assert changes["template"].startswith("{% raw %}Be brief")  # substituted where it stood


def test_an_instruction_written_into_a_recipe_file_renders_as_in_the_search(tmp_path: Path) -> None:
    path = _recipe(tmp_path)
    base = _version(path, 3)
    changes = version_changes(base, instruction="Answer as a pirate.", demos=None, fixed=None)
    written = _version(path, _write_version(path, base=3, **changes))
    searched = replace(base.to_spec({"product": "Acme"}), instruction="Answer as a pirate.")
    assert _render(written.to_spec({"product": "Acme"})) == _render(searched)


# -- llmopt recipes show and diff --------------------------------------------------------


def test_show_and_diff_include_the_demos_and_the_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmopt.cli import main

    path = _recipe(tmp_path)
    demos = {"k": 2, "select": "similar", "seed": 0, "retriever": "tfidf", "examples": "replace"}
    provenance = {**PROVENANCE, "confirmation": {"vs": "baseline", "delta": 0.2, "ci": [0.05, 0.35], "p": 0.01, "passed": True}}
    write_version(path, base=3, demos=demos, description="similar demos", provenance=provenance)
    monkeypatch.chdir(tmp_path)
    assert main(["recipes", "show", "qa@4"]) == 0
    out = capsys.readouterr().out
    assert out.index("fields:") < out.index("demos:\n  k: 2\n  select: similar\n") < out.index("provenance:\n  search: faq\n")
    assert "  confirmation:\n    vs: baseline\n    delta: 0.2\n" in out
    assert main(["recipes", "diff", "qa@3", "qa@4"]) == 0
    diff = capsys.readouterr().out
    assert "+demos:\n+  k: 2\n" in diff and "+provenance:\n+  search: faq\n+  candidate: c2\n" in diff
    assert "+  written: '2026-12-03'\n" in diff
    assert main(["recipes", "lint"]) == 0


def test_a_version_s_demos_and_provenance_are_checked_by_the_schema(tmp_path: Path) -> None:
    text = RECIPE.replace("    # reviewed by Dana\n", "    demos: {k: 0, select: nearest}\n    provenance: {dev: {n: many}}\n")
    path = _recipe(tmp_path, text)
    problems = [str(p) for p in load_book(path.parent, str).problems]
    assert any("versions.3.demos.k" in p for p in problems)
    assert any("versions.3.demos.select" in p for p in problems)
    assert any("versions.3.provenance.dev.n" in p for p in problems)
    ok = RECIPE.replace("    # reviewed by Dana\n", "    provenance: {by: Dana, dev: {n: 3}}\n")
    assert load_book(_recipe(tmp_path, ok).parent, str).recipes["qa"].versions[3].provenance == {"by": "Dana", "dev": {"n": 3}}


# -- llmopt search --write ---------------------------------------------------------------

SPEC = """\
llmopt: 1
scenario: faq
# the help desk's questions
task:
  id: id
  expected: answer
  split: {{train: 0.4, dev: 0.3, test: 0.3, seed: 1}}
  cases:
{cases}
recipe:
{recipe}
model:
  provider: echo
variants:
  baseline: {{}}   # the hand-written prompt
search:
  axes:
    demos: {{k: [0, 2], select: [random, similar]}}
  objective: {{metric: exact_match}}
  confirm: {{vs: baseline}}
"""
CASES = "".join(f'    - {{id: q{i}, question: "Q{i}", answer: "A{i}"}}\n' for i in range(20)).rstrip("\n")
USE = "  use: qa@3\n  fields: {product: Acme}"
DOC_ENTRY = {"splits": {"dev": {"n": 6}, "test": {"n": 6}},
             "confirmation": {"delta": 0.25, "ci": [0.05, 0.45], "p": 0.012345, "outcome": "passed", "looks": 1}}
SHOWN = [{"id": "q3", "input": "Q3", "prompt": "Q: {{ Q3 }}", "answer": "A3"}, {"id": "q7", "input": "Q7", "prompt": "Q: Q7", "answer": "A7"}]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    _recipe(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _spec(project: Path, recipe: str = USE, axes: str = "") -> Path:
    path = project / "specs" / "faq.yaml"
    path.parent.mkdir(exist_ok=True)
    text = SPEC.format(cases=CASES, recipe=recipe)
    path.write_text(text.replace("  axes:\n", "  axes:\n" + axes), encoding="utf-8")
    return path


def _outcome(spec: Path, select: str, *, instruction: str | None = None, shown: Any = SHOWN) -> tuple[Any, SearchOutcome]:
    scenario = load_spec(spec)
    assert scenario.search is not None
    candidate = next(c for c in scenario.search.candidates if (c.variant.recipe.demos or DemosSpec(0)).select == select
                     and c.variant.recipe.demos is not None)
    if instruction is not None:
        recipe = replace(candidate.variant.recipe, instruction=instruction)
        candidate = replace(candidate, proposal=2, variant=replace(candidate.variant, recipe=recipe))
    run = CandidateRun(candidate, rounds=[RoundScore(1, 6, 0.833333, None, None)], demos={"shown": shown})
    outcome = SearchOutcome(scenario.search, [run], [], DOC_ENTRY["splits"], True, winner=run)
    return scenario, outcome


def _doc() -> dict[str, Any]:
    return {"scenarios": [{"scenario": "faq", "search": DOC_ENTRY}]}


def test_a_generated_winner_becomes_the_recipe_s_next_version_and_the_variant_uses_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(project)
    scenario, outcome = _outcome(spec, "random", instruction="Answer with the code only.")
    _write(spec, scenario, outcome, _doc())
    out = capsys.readouterr().out.splitlines()
    assert out == ["wrote variant 'optimized' and its assertion into specs/faq.yaml",
                   "wrote recipe version qa@4 into recipes/qa.yaml (instruction: proposal 2; demos: k=2 random, from qa@3)",
                   "review it: llmopt recipes diff qa@3 qa@4"]
    written = _version(project / "recipes" / "qa.yaml", 4)
    assert written.system == "Answer with the code only." and written.demos is None
    assert written.examples[1:] == (("{% raw %}Q: {{ Q3 }}{% endraw %}", "A3"), ("Q: Q7", "A7"))
    assert written.description == "The winner of llmopt search of faq (instruction: proposal 2; demos: k=2 random), from qa@3."
    assert "    template: |\n      Q: {{ question }}\n    examples:\n" in (project / "recipes" / "qa.yaml").read_text(encoding="utf-8")
    assert written.provenance == {
        "search": "faq", "spec": "../specs/faq.yaml", "candidate": outcome.winner.name if outcome.winner else "",
        "generator": "instruction: proposal 2; demos: k=2 random", "objective": "exact_match",
        "dev": {"n": 6, "value": 0.8333}, "test": {"n": 6},
        "confirmation": {"vs": "baseline", "delta": 0.25, "ci": [0.05, 0.45], "p": 0.0123, "passed": True},
        "written": datetime.date.today().isoformat(),
    }
    text = spec.read_text(encoding="utf-8")
    assert "  optimized: {recipe: {use: qa@4}}\n" in text
    assert "  # recipe qa@4: instruction: proposal 2; demos: k=2 random, from qa@3 (review: llmopt recipes diff qa@3 qa@4)\n" in text
    optimized = load_spec(spec).variants["optimized"].recipe
    assert (optimized.ref, optimized.fields, optimized.demos, optimized.instruction) == ("qa@4", {"product": "Acme"}, None, None)


def test_writing_the_same_generated_winner_twice_adds_one_version(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(project)
    scenario, outcome = _outcome(spec, "random")
    _write(spec, scenario, outcome, _doc())
    recipe, text = (project / "recipes" / "qa.yaml").read_text(encoding="utf-8"), spec.read_text(encoding="utf-8")
    capsys.readouterr()
    scenario, outcome = _outcome(spec, "random")
    _write(spec, scenario, outcome, _doc())
    assert (project / "recipes" / "qa.yaml").read_text(encoding="utf-8") == recipe
    assert spec.read_text(encoding="utf-8") == text
    assert "recipe version qa@4 in recipes/qa.yaml already holds the winner (demos: k=2 random)" in capsys.readouterr().out


def test_a_similar_winner_writes_the_demos_mapping_and_nulls_the_top_level_s_demos(project: Path) -> None:
    spec = _spec(project, USE + "\n  demos: {k: 1, select: random}", axes="    recipe.fields.product: [Bolt]\n")
    scenario, outcome = _outcome(spec, "similar", shown=None)
    _write(spec, scenario, outcome, _doc())
    written = _version(project / "recipes" / "qa.yaml", 4)
    assert written.demos == DemosSpec(k=2, select="similar") and written.examples == _version(project / "recipes" / "qa.yaml", 3).examples
    assert "  optimized: {recipe: {use: qa@4, fields: {product: Bolt}, demos: null}}\n" in spec.read_text(encoding="utf-8")
    optimized = load_spec(spec).variants["optimized"].recipe
    assert (optimized.ref, optimized.fields, optimized.demos) == ("qa@4", {"product": "Bolt"}, DemosSpec(k=2, select="similar"))


def test_a_generated_winner_of_an_inline_recipe_is_written_into_the_variant(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(project, '  system: "You answer."\n  template: "Q: {{ question }}"')
    scenario, outcome = _outcome(spec, "similar", instruction="Answer {{ exactly }}.", shown=None)
    _write(spec, scenario, outcome, _doc())
    out = capsys.readouterr().out
    assert ("the winner's recipe is inline (no recipe file): variant 'optimized' holds its instruction as "
            "recipe.system and its demonstrations as recipe.demos") in out
    assert "  4:" not in (project / "recipes" / "qa.yaml").read_text(encoding="utf-8")
    optimized = load_spec(spec).variants["optimized"].recipe
    assert optimized.system == "{% raw %}Answer {{ exactly }}.{% endraw %}" and optimized.demos == DemosSpec(k=2, select="similar")


def test_the_new_version_is_taken_back_when_the_spec_cannot_be_written(project: Path) -> None:
    spec = _spec(project)
    scenario, outcome = _outcome(spec, "random")
    spec.write_text(spec.read_text(encoding="utf-8") + "assertions: {metric: exact_match}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="assertions: must be a list"):
        _write(spec, scenario, outcome, _doc())
    assert (project / "recipes" / "qa.yaml").read_text(encoding="utf-8") == RECIPE
    assert not any(name.endswith(".tmp") for name in os.listdir(project / "recipes"))

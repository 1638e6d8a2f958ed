"""Tests of llmopt.search._write: the search winner written into its spec as a variant,
every other byte of the file kept."""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from llmopt.errors import SpecError
from llmopt.search import _write
from llmopt.search._write import write_winner
from llmopt.spec import load_scenario
from llmopt.spec._yaml import parse_yaml

COMMENT = [
    "written by llmopt search 2026-12-02: objective contains (maximized)",
    "dev n=36, test n=24; confirmed vs baseline: +0.29 [0.08, 0.50] p=0.004 (look 1)",
]
ASSERTION = {"metric": "contains", "variant": "optimized", "vs": "baseline", "min_delta": 0.05, "confidence": 0.95}
OVERRIDES = {"recipe": {"template": "Q: {{ q }}"}, "retrieval": {"top_k": 2}}

COMMENTED = """\
# yaml-language-server: $schema=../schema.json
# The help desk, offline.
llmopt: 1
scenario: faq   # unique id
description: 'Acme help-desk answers'

task:
  cases: [{id: a, q: x, answer: x}, {id: b, q: y, answer: y}]
  expected: answer   # the reference

recipe:                          # the prompt
  template: "{{ q }}"

model:
  provider: echo

variants:
  # no retrieval at all
  baseline:  {retrieval: null}   # aligned by hand

  # retrieval on
  rag:
    retrieval:
      top_k: 3     # three chunks
  tuned: {model: {params: {temperature: 0}}}
  # local: {model: {provider: local}}   (off until the model is downloaded)

# the gates
assertions:
  - metric: contains   # threshold
    variant: rag
    min: 0.5

  - {metric: contains, variant: rag, vs: baseline, min_delta: 0.1}
"""

PLAIN = """\
llmopt: 1
scenario: plain
task:
  cases: [{id: a, q: x}, {id: b, q: y}]
recipe:
  template: "{{ q }}"
model: {provider: echo}
assertions:
  - metric: contains
    min: 0.5
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_bytes(text.encode("utf-8"))
    return path


def _write_winner(path: Path, overrides: Any = OVERRIDES, assertion: Any = ASSERTION, **kwargs: Any) -> str:
    write_winner(path, name="optimized", overrides=overrides, comment=kwargs.get("comment", COMMENT), assertion=assertion)
    return path.read_bytes().decode("utf-8")


def _insertions(before: str, after: str) -> list[tuple[int, list[str]]]:
    """Where lines were inserted into ``before`` (the line index they come before) and
    which; fails when any line was changed or removed."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    ops = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    assert [op[0] for op in ops] == ["insert"] * len(ops), list(difflib.unified_diff(old, new))
    return [(i1, new[j1:j2]) for _, i1, _, j1, j2 in ops]


def _data(path: Path) -> Any:
    doc, issues = parse_yaml(path.read_text(encoding="utf-8"))
    assert doc is not None and issues == []
    return doc.data


# -- a file with comments everywhere: only added lines ----------------------------------


def test_a_commented_spec_only_gains_the_variant_and_the_assertion(tmp_path: Path) -> None:
    path = _spec(tmp_path, COMMENTED)
    after = _write_winner(path)
    old = COMMENTED.splitlines()
    assert _insertions(COMMENTED, after) == [
        (old.index("  tuned: {model: {params: {temperature: 0}}}") + 1, [
            f"  # {COMMENT[0]}\n",
            f"  # {COMMENT[1]}\n",
            "  optimized: {recipe: {template: 'Q: {{ q }}'}, retrieval: {top_k: 2}}\n",
        ]),
        # in the style of the last entry (flow), since it fits on one line
        (len(old), ["  - {metric: contains, variant: optimized, vs: baseline, min_delta: 0.05, confidence: 0.95}\n"]),
    ]
    data = _data(path)
    assert list(data["variants"]) == ["baseline", "rag", "tuned", "optimized"]
    assert data["variants"]["optimized"] == OVERRIDES
    assert data["assertions"][-1] == ASSERTION and len(data["assertions"]) == 3


def test_the_inserted_lines_sit_inside_the_variants_block_and_the_assertions_list(tmp_path: Path) -> None:
    path = _spec(tmp_path, COMMENTED)
    old = COMMENTED.splitlines()
    (variant_at, _), (assertion_at, _) = _insertions(COMMENTED, _write_winner(path))
    assert old.index("variants:") < variant_at < old.index("# the gates")
    assert old.index("assertions:") < assertion_at == len(old)


def test_a_long_variant_is_written_in_block_style_with_short_parts_in_flow(tmp_path: Path) -> None:
    path = _spec(tmp_path, COMMENTED)
    overrides = {"recipe": {"system": "Answer in one sentence, " * 4, "template": "Q: {{ q }}"}, "retrieval": {"top_k": 2}}
    [(_, added), _] = _insertions(COMMENTED, _write_winner(path, overrides))
    assert added[2:] == [
        "  optimized:\n",
        "    recipe:\n",
        "      system: 'Answer in one sentence, Answer in one sentence, Answer in one sentence, Answer in one sentence, '\n",
        "      template: 'Q: {{ q }}'\n",
        "    retrieval: {top_k: 2}\n",
    ]
    assert _data(path)["variants"]["optimized"] == overrides


def test_the_flow_style_fits_exactly_one_hundred_characters(tmp_path: Path) -> None:
    path = _spec(tmp_path, PLAIN.replace("assertions:", "variants:\n  a: {}\nassertions:"))
    room = 100 - len("  optimized: {recipe: {template: }}")
    fits = {"recipe": {"template": "x" * room}}
    line = [line for line in _write_winner(path, fits, None).splitlines() if "optimized" in line and "#" not in line]
    assert line == ["  optimized: {recipe: {template: " + "x" * room + "}}"] and len(line[0]) == 100
    too_long = {"recipe": {"template": "x" * (room + 1)}}
    assert "  optimized:\n    recipe: {template: " in _write_winner(path, too_long, None)


# -- replacing a variant -----------------------------------------------------------------


REPLACED = """\
llmopt: 1
scenario: replaced
task:
  cases: [{id: a, q: x}]
recipe:
  template: "{{ q }}"
model: {provider: echo}
variants:
  baseline: {}   # the prompt alone
  # written by llmopt search 2026-11-01: an older run
  # dev n=10
  optimized:
    recipe:
      template: "old {{ q }}"
  rag: {}   # after it
assertions:
  - {metric: contains, variant: optimized, vs: baseline, min_delta: 0.05, confidence: 0.95}
"""


def test_an_existing_variant_is_replaced_with_its_comment_where_it_stands(tmp_path: Path) -> None:
    path = _spec(tmp_path, REPLACED)
    after = _write_winner(path)
    assert "an older run" not in after and "dev n=10" not in after and "old {{ q }}" not in after
    assert after == REPLACED.replace(
        "  # written by llmopt search 2026-11-01: an older run\n  # dev n=10\n"
        "  optimized:\n    recipe:\n      template: \"old {{ q }}\"\n",
        f"  # {COMMENT[0]}\n  # {COMMENT[1]}\n"
        "  optimized: {recipe: {template: 'Q: {{ q }}'}, retrieval: {top_k: 2}}\n",
    )
    assert list(_data(path)["variants"]) == ["baseline", "optimized", "rag"]


def test_writing_the_same_winner_twice_is_stable(tmp_path: Path) -> None:
    path = _spec(tmp_path, REPLACED)
    first = _write_winner(path)
    assert _write_winner(path) == first
    other = {"retrieval": None, "model": {"params": {"temperature": 0.5, "stop": ["\n\n", "Q:"], "seed": 7}}}
    second = _write_winner(path, other, comment=["a newer run"])
    assert _write_winner(path, other, comment=["a newer run"]) == second
    assert second.count("optimized:") == 1 and "# a newer run\n  optimized:" in second
    assert COMMENT[0] not in second
    assert _data(path)["variants"]["optimized"] == other


def test_a_new_variant_written_twice_is_stable_and_added_once(tmp_path: Path) -> None:
    path = _spec(tmp_path, COMMENTED)
    first = _write_winner(path)
    assert _write_winner(path) == first
    assert first.count("optimized:") == 1 and first.count("variant: optimized") == 1


# -- a spec without variants --------------------------------------------------------------


def test_a_spec_without_variants_gets_default_and_the_winner_and_still_loads(tmp_path: Path) -> None:
    path = _spec(tmp_path, PLAIN)
    overrides = {"recipe": {"template": "Q: {{ q }}"}}
    assertion = {"metric": "contains", "variant": "optimized", "vs": "default", "min_delta": 0.05}
    after = _write_winner(path, overrides, assertion)
    assert _insertions(PLAIN, after) == [
        (PLAIN.splitlines().index("assertions:"), [
            "variants:\n",
            "  default: {}\n",
            f"  # {COMMENT[0]}\n",
            f"  # {COMMENT[1]}\n",
            "  optimized: {recipe: {template: 'Q: {{ q }}'}}\n",
        ]),
        (len(PLAIN.splitlines()), [
            "  - metric: contains\n",
            "    variant: optimized\n",
            "    vs: default\n",
            "    min_delta: 0.05\n",
        ]),
    ]
    scenario = load_scenario(path)
    assert list(scenario.variants) == ["default", "optimized"]
    assert scenario.variants["default"].recipe.template == "{{ q }}"
    assert scenario.variants["optimized"].recipe.template == "Q: {{ q }}"
    model = scenario.variants["optimized"].model
    assert model is not None and model.provider == "echo"
    assert ("contains", "optimized", "default") in [(a.metric, a.variant, a.vs) for a in scenario.assertions]


def test_variants_go_after_the_last_section_with_the_file_s_blank_lines(tmp_path: Path) -> None:
    text = (
        "llmopt: 1\nscenario: s\n\nmodel:\n  provider: echo\n  # id: gpt-4o-mini   (later)\n\n"
        "task:\n  cases: [{id: a, q: x}]\n\nrecipe: {template: '{{ q }}'}\n\n# gates\nassertions: []\n"
    )
    path = _spec(tmp_path, text)
    after = _write_winner(path, {"retrieval": None}, None, comment=[])
    assert after == text.replace(
        "recipe: {template: '{{ q }}'}\n\n",
        "recipe: {template: '{{ q }}'}\n\nvariants:\n  default: {}\n  optimized: {retrieval: null}\n\n",
    )
    assert list(load_scenario(path).variants) == ["default", "optimized"]


def test_an_empty_flow_variants_is_unfolded_into_block_style(tmp_path: Path) -> None:
    text = PLAIN.replace("assertions:", "variants: {a: {}, b: {retrieval: null}}   # two\nassertions:")
    path = _spec(tmp_path, text)
    after = _write_winner(path, {"retrieval": None}, None, comment=["c"])
    assert "variants:   # two\n  a: {}\n  b: {retrieval: null}\n  # c\n  optimized: {retrieval: null}\nassertions:" in after
    assert list(_data(path)["variants"]) == ["a", "b", "optimized"]


# -- values --------------------------------------------------------------------------------


def test_none_is_written_as_null(tmp_path: Path) -> None:
    path = _spec(tmp_path, COMMENTED)
    overrides = {"retrieval": None, "model": {"params": {"stop": None, "long": "x" * 90}}}
    after = _write_winner(path, overrides, None)
    assert "  optimized:\n    retrieval: null\n    model:\n      params:\n        stop: null\n" in after
    assert _data(path)["variants"]["optimized"] == overrides
    _write_winner(path, {"retrieval": None}, None)
    assert "  optimized: {retrieval: null}\n" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("system", ["Answer briefly.\nCite the policy.", "One.\n\n  Two.\nThree\n", "a: b\n- c\n# d\n"])
def test_a_text_of_several_lines_is_written_as_a_literal_block(tmp_path: Path, system: str) -> None:
    path = _spec(tmp_path, COMMENTED)
    overrides = {"recipe": {"system": system}}
    after = _write_winner(path, overrides, None)
    assert "  optimized:\n    recipe:\n      system: |" in after
    assert _data(path)["variants"]["optimized"] == overrides


@pytest.mark.parametrize("system", ["trailing space \nsecond", "blank lines after\nit\n\n", " leading space\nsecond"])
def test_a_text_a_literal_block_cannot_hold_stays_quoted(tmp_path: Path, system: str) -> None:
    path = _spec(tmp_path, COMMENTED)
    overrides = {"recipe": {"system": system}}
    escaped = system.replace("\n", "\\n")
    assert f'  optimized: {{recipe: {{system: "{escaped}"}}}}\n' in _write_winner(path, overrides, None)
    assert _data(path)["variants"]["optimized"] == overrides


def test_an_equal_assertion_is_not_added_twice(tmp_path: Path) -> None:
    path = _spec(tmp_path, COMMENTED)
    _write_winner(path)
    _write_winner(path, {"retrieval": None})
    assert _data(path)["assertions"].count(ASSERTION) == 1
    # written in another style and key order, it is still the same assertion
    existing = {"metric": "contains", "variant": "rag", "vs": "baseline", "min_delta": 0.1}
    before = path.read_text(encoding="utf-8")
    after = _write_winner(path, {"retrieval": None}, existing)
    assert after == before


def test_assertions_are_created_at_the_end_when_missing(tmp_path: Path) -> None:
    text = PLAIN[: PLAIN.index("assertions:")]
    path = _spec(tmp_path, text)
    after = _write_winner(path, {}, {"metric": "contains", "variant": "optimized", "min": 0.5}, comment=[])
    assert after == text + (
        "variants:\n  default: {}\n  optimized: {}\n"
        "assertions:\n  - metric: contains\n    variant: optimized\n    min: 0.5\n"
    )


def test_flow_assertions_keep_their_style(tmp_path: Path) -> None:
    text = PLAIN.replace("assertions:\n  - metric: contains\n    min: 0.5\n", "assertions: [{metric: contains, min: 0.5}]   # one\n")
    path = _spec(tmp_path, text)
    after = _write_winner(path, {}, {"metric": "contains", "variant": "optimized", "min": 0.6}, comment=[])
    assert after.endswith(
        "assertions: [{metric: contains, min: 0.5}, {metric: contains, variant: optimized, min: 0.6}]   # one\n"
    )


# -- the file around ------------------------------------------------------------------------


def test_header_lines_line_endings_and_a_missing_final_newline_are_kept(tmp_path: Path) -> None:
    text = "# yaml-language-server: $schema=x.json\r\n" + COMMENTED.replace("\n", "\r\n").rstrip("\r\n")
    path = _spec(tmp_path, text)
    after = _write_winner(path)
    assert after.startswith("# yaml-language-server: $schema=x.json\r\n# yaml-language-server")
    assert after.endswith("min_delta: 0.05, confidence: 0.95}") and "\n" not in after.replace("\r\n", "")
    assert _data(path)["variants"]["optimized"] == OVERRIDES


def test_the_file_keeps_its_permissions_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    path = _spec(tmp_path, COMMENTED)
    os.chmod(path, 0o640)
    _write_winner(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_a_symlinked_spec_is_written_through_its_link(tmp_path: Path) -> None:
    real = _spec(tmp_path, COMMENTED)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    _write_winner(link)
    assert link.is_symlink() and "optimized:" in real.read_text(encoding="utf-8")


# -- refusals -------------------------------------------------------------------------------


def test_a_list_of_variants_is_refused_naming_the_file_and_line(tmp_path: Path) -> None:
    text = PLAIN.replace("assertions:", "variants:\n  - baseline\n  - rag\nassertions:")
    path = _spec(tmp_path, text)
    with pytest.raises(SpecError) as info:
        _write_winner(path)
    line = text.splitlines().index("variants:") + 1
    assert info.value.problems[0].line == line
    assert f"{path}:{line}: variants: must be a mapping of variant names to overrides" in str(info.value)
    assert "got a list" in str(info.value)
    assert path.read_text(encoding="utf-8") == text


def test_assertions_that_are_a_mapping_are_refused(tmp_path: Path) -> None:
    text = PLAIN.replace("  - metric: contains\n    min: 0.5\n", "  contains: {min: 0.5}\n")
    path = _spec(tmp_path, text)
    with pytest.raises(SpecError, match=rf"{path}:8: assertions: must be a list .* got a mapping"):
        _write_winner(path)
    assert path.read_text(encoding="utf-8") == text


def test_a_broken_file_is_refused_with_its_yaml_error(tmp_path: Path) -> None:
    path = _spec(tmp_path, PLAIN + "variants: {a: [\n")
    with pytest.raises(SpecError, match=rf"{path}:\d+:\d+: YAML syntax error"):
        _write_winner(path)


def test_a_multi_line_flow_variants_is_refused(tmp_path: Path) -> None:
    text = PLAIN.replace("assertions:", "variants: {a: {},\n  b: {}}\nassertions:")
    path = _spec(tmp_path, text)
    with pytest.raises(SpecError, match=rf"{path}:8: variants: is written in flow style over several lines"):
        _write_winner(path)
    assert path.read_text(encoding="utf-8") == text


def test_the_original_is_restored_when_the_written_file_does_not_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _spec(tmp_path, COMMENTED)
    checks: list[str] = []
    verify = _write._verify

    def fail_after_writing(text: str, expected: dict[str, Any], shown: str, name: str) -> None:
        checks.append(text)
        if len(checks) == 2:  # the check of the file as written on disk
            assert "optimized:" in path.read_text(encoding="utf-8")
            raise SpecError([])
        verify(text, expected, shown, name)

    monkeypatch.setattr(_write, "_verify", fail_after_writing)
    with pytest.raises(SpecError):
        _write_winner(path)
    assert len(checks) == 2 and path.read_text(encoding="utf-8") == COMMENTED


def test_a_spliced_text_that_reads_back_differently_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _spec(tmp_path, COMMENTED)
    monkeypatch.setattr(_write, "_entry", lambda text, name, value, indent: [" " * indent + f"{name}: {{}}\n"])
    with pytest.raises(SpecError, match=rf"{path}: cannot write the search winner as variant 'optimized' \(it would read back differently\)"):
        _write_winner(path)
    assert path.read_text(encoding="utf-8") == COMMENTED

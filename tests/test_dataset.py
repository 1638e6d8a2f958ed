"""Tests for llmopt.dataset: formats, field mapping, sampling, errors, check_task."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llmopt.dataset import Case, check_task, load_cases
from llmopt.errors import DatasetError
from llmopt.spec._model import TaskSpec


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*rows: Any) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """A spec path in tmp_path (the file itself is never read by the dataset code)."""
    return tmp_path / "spec.yaml"


def load(spec: Path, dataset: str, **options: Any) -> list[Case]:
    return load_cases(TaskSpec(dataset=Path(dataset), **options), spec)


def error_of(spec: Path, dataset: str, **options: Any) -> str:
    with pytest.raises(DatasetError) as info:
        load(spec, dataset, **options)
    return str(info.value)


# --- formats -----------------------------------------------------------------------


def test_jsonl_maps_id_expected_fields_and_source(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "data/faq.jsonl", jsonl(
        {"id": "q1", "question": "Hours?", "answer": "9-5"},
        {"id": "q2", "question": "Refunds?", "answer": "30 days"},
    ))
    cases = load(spec, "data/faq.jsonl", id_field="id", expected_field="answer")
    assert cases == [
        Case("q1", {"id": "q1", "question": "Hours?", "answer": "9-5"}, "9-5",
             "data/faq.jsonl:1"),
        Case("q2", {"id": "q2", "question": "Refunds?", "answer": "30 days"}, "30 days",
             "data/faq.jsonl:2"),
    ]


def test_jsonl_skips_blank_lines_and_keeps_file_lines(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.ndjson", '\n{"a": 1}\n   \n\n{"a": 2}\n')
    cases = load(spec, "d.ndjson")
    assert [c.id for c in cases] == ["1", "2"]  # row numbers, not file lines
    assert [c.source for c in cases] == ["d.ndjson:2", "d.ndjson:5"]


def test_jsonl_accepts_a_byte_order_mark_and_crlf(tmp_path: Path, spec: Path) -> None:
    (tmp_path / "d.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n')
    assert [c.fields for c in load(spec, "d.jsonl")] == [{"a": 1}, {"a": 2}]


def test_csv_values_are_strings_and_rows_keep_their_start_line(
    tmp_path: Path, spec: Path
) -> None:
    write(tmp_path, "d.csv", 'id,question,answer\n7,"two\nlines",yes\n\n,,\n8,plain,no\n')
    cases = load(spec, "d.csv", id_field="id", expected_field="answer")
    assert [(c.id, c.fields["question"], c.expected, c.source) for c in cases] == [
        ("7", "two\nlines", "yes", "d.csv:2"),
        ("8", "plain", "no", "d.csv:6"),
    ]
    assert cases[0].fields == {"id": "7", "question": "two\nlines", "answer": "yes"}


def test_yaml_rows_are_plain_values_with_lines(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.yaml", (
        "# cases\n"
        "- id: 1\n"
        "  flag: &t true\n"
        "  again: *t\n"
        "  score: 1.5\n"
        "  day: 2024-01-02\n"
        "  tags: [a, b]\n"
        "- id: 2\n"
        "  expected: |\n"
        "    multi\n"
    ))
    cases = load(spec, "d.yaml", id_field="id")
    first, second = cases
    assert first.fields == {"id": 1, "flag": True, "again": True, "score": 1.5,
                            "day": "2024-01-02", "tags": ["a", "b"]}
    assert type(first.fields["again"]) is bool and type(first.fields["score"]) is float
    assert type(first.fields["tags"]) is list
    assert (first.id, first.source, first.expected) == ("1", "d.yaml:2", None)
    assert (second.id, second.source) == ("2", "d.yaml:8")
    assert second.expected == "multi\n" and type(second.expected) is str


def test_yaml_tags_never_construct_objects(tmp_path: Path, spec: Path) -> None:
    marker = tmp_path / "ran"
    write(tmp_path, "d.yml", f'- cmd: !!python/object/apply:os.system ["touch {marker}"]\n')
    load(spec, "d.yml")
    assert not marker.exists()


def test_json_list_rows_keep_their_lines(tmp_path: Path, spec: Path) -> None:
    text = '[\n  {"id": "a"},\n\n  {"id": "b",\n   "x": [1, 2]}, {"id": "c"}\n]\n'
    write(tmp_path, "d.json", text)
    cases = load(spec, "d.json", id_field="id")
    assert [(c.id, c.source) for c in cases] == [("a", "d.json:2"), ("b", "d.json:4"),
                                               ("c", "d.json:5")]


def test_inline_cases(spec: Path) -> None:
    task = TaskSpec(cases=({"id": "x", "q": "hi", "expected": "HI"}, {"id": "y", "q": "yo"}),
                    id_field="id")
    cases = load_cases(task, spec)
    assert [(c.id, c.expected, c.fields) for c in cases] == [
        ("x", "HI", {"id": "x", "q": "hi", "expected": "HI"}),
        ("y", None, {"id": "y", "q": "yo"}),
    ]


def test_inline_cases_from_ruamel_keep_spec_lines(tmp_path: Path, monkeypatch: Any) -> None:
    from ruamel.yaml import YAML

    monkeypatch.chdir(tmp_path)
    doc = YAML(typ="rt").load("task:\n  cases:\n    - {q: a}\n    - q: b\n      n: &n 3\n")
    task = TaskSpec(cases=tuple(doc["task"]["cases"]))
    cases = load_cases(task, tmp_path / "specs" / "s.yaml")
    assert [(c.id, c.source, c.fields) for c in cases] == [
        ("1", "specs/s.yaml:3", {"q": "a"}),
        ("2", "specs/s.yaml:4", {"q": "b", "n": 3}),
    ]
    assert type(cases[1].fields["n"]) is int


# --- id and expected mapping -------------------------------------------------------


def test_ids_are_stringified(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.jsonl", jsonl({"n": 17}, {"n": "q"}, {"n": 2.5}))
    assert [c.id for c in load(spec, "d.jsonl", id_field="n")] == ["17", "q", "2.5"]


def test_expected_defaults_to_the_expected_field(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.jsonl", jsonl({"q": 1, "expected": "one"}, {"q": 2}))
    assert [c.expected for c in load(spec, "d.jsonl")] == ["one", None]


def test_explicit_expected_field_is_used(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.jsonl", jsonl({"expected": "no", "answer": "yes"}))
    assert load(spec, "d.jsonl", expected_field="answer")[0].expected == "yes"


def test_relative_dataset_resolves_against_the_spec_folder(
    tmp_path: Path, monkeypatch: Any
) -> None:
    write(tmp_path, "data/d.jsonl", jsonl({"a": 1}))
    (tmp_path / "specs").mkdir()
    monkeypatch.chdir(tmp_path.parent)
    cases = load_cases(TaskSpec(dataset=Path("../data/d.jsonl")), tmp_path / "specs" / "s.yaml")
    assert cases[0].source == "../data/d.jsonl:1"


def test_absolute_dataset_is_labelled_relative_to_the_spec(tmp_path: Path) -> None:
    path = write(tmp_path, "specs/data/d.jsonl", jsonl({"a": 1}, [2]))
    spec = tmp_path / "specs" / "s.yaml"
    with pytest.raises(DatasetError, match=r"^data/d\.jsonl:2: a row must be"):
        load_cases(TaskSpec(dataset=path), spec)
    outside = write(tmp_path, "other/d.jsonl", jsonl({"a": 1}))
    assert load_cases(TaskSpec(dataset=outside), spec)[0].source == "../other/d.jsonl:1"


# --- sampling ----------------------------------------------------------------------


@pytest.fixture
def ten(tmp_path: Path) -> str:
    write(tmp_path, "ten.jsonl", jsonl(*({"k": i} for i in range(1, 11))))
    return "ten.jsonl"


def test_sample_is_seeded_and_pinned(spec: Path, ten: str) -> None:
    # Pinned so that a change in the sampling algorithm is noticed (results depend on it).
    assert [c.id for c in load(spec, ten, sample=3)] == ["3", "7", "8"]
    assert [c.id for c in load(spec, ten, sample=3, seed=1)] == ["1", "3", "7"]


def test_sample_is_deterministic_and_keeps_order(spec: Path, ten: str) -> None:
    for seed in range(20):
        ids = [int(c.id) for c in load(spec, ten, sample=4, seed=seed)]
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert ids == [int(c.id) for c in load(spec, ten, sample=4, seed=seed)]


def test_sample_differs_between_seeds(spec: Path, ten: str) -> None:
    picks = {tuple(c.id for c in load(spec, ten, sample=3, seed=s)) for s in range(10)}
    assert len(picks) > 1


@pytest.mark.parametrize("size", [10, 11, 1000])
def test_sample_at_least_the_size_keeps_all(spec: Path, ten: str, size: int) -> None:
    assert [c.id for c in load(spec, ten, sample=size)] == [str(i) for i in range(1, 11)]


def test_ids_are_checked_before_sampling(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.jsonl", jsonl({"id": 1}, {"id": 2}, {"id": 1}))
    with pytest.raises(DatasetError, match="duplicate id"):
        load(spec, "d.jsonl", id_field="id", sample=1)


# --- JSONL errors (exact text) ------------------------------------------------------


def test_invalid_json_line(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "data/faq.jsonl", '{"id": "q1"}\n{"id": "q2" "answer": 1}\n')
    assert error_of(spec, "data/faq.jsonl") == (
        "data/faq.jsonl:2: invalid JSON: Expecting ',' delimiter (column 13)"
    )


def test_missing_expected_field(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "data/faq.jsonl", jsonl({"answer": "a"}, {"question": "b"}))
    assert error_of(spec, "data/faq.jsonl", expected_field="answer") == (
        "data/faq.jsonl:2: missing field 'answer' (task.expected)"
    )


def test_missing_id_field(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "data/faq.jsonl", jsonl({"id": "a"}, {"question": "b"}))
    assert error_of(spec, "data/faq.jsonl", id_field="id") == (
        "data/faq.jsonl:2: missing field 'id' (task.id)"
    )


def test_missing_input_field(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "data/faq.jsonl", jsonl({"q": "a"}))
    assert error_of(spec, "data/faq.jsonl", input_field="question") == (
        "data/faq.jsonl:1: missing field 'question' (task.input)"
    )


@pytest.mark.parametrize(
    ("line", "kind"), [("[1, 2]", "list"), ('"text"', "string"), ("3", "integer"),
                       ("null", "null"), ("true", "boolean")]
)
def test_row_not_an_object(tmp_path: Path, spec: Path, line: str, kind: str) -> None:
    write(tmp_path, "data/faq.jsonl", line + "\n")
    assert error_of(spec, "data/faq.jsonl") == (
        f"data/faq.jsonl:1: a row must be a JSON object, got {kind}"
    )


def test_duplicate_id_names_both_lines(tmp_path: Path, spec: Path) -> None:
    text = jsonl({"id": "q1"}, {"id": "q2"}) + "\n" + jsonl({"id": "q1"})
    write(tmp_path, "data/faq.jsonl", text)
    assert error_of(spec, "data/faq.jsonl", id_field="id") == (
        "data/faq.jsonl:4: duplicate id 'q1' (first at line 1)"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "field 'id' (task.id) must be a string or a number, got null"),
        ([1], "field 'id' (task.id) must be a string or a number, got list"),
        (True, "field 'id' (task.id) must be a string or a number, got boolean"),
        (" ", "field 'id' (task.id) is empty"),
    ],
)
def test_unusable_id_value(tmp_path: Path, spec: Path, value: Any, message: str) -> None:
    write(tmp_path, "d.jsonl", jsonl({"id": value}))
    assert error_of(spec, "d.jsonl", id_field="id") == f"d.jsonl:1: {message}"


def test_invalid_utf8_line(tmp_path: Path, spec: Path) -> None:
    (tmp_path / "d.jsonl").write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    assert error_of(spec, "d.jsonl") == "d.jsonl:2: not valid UTF-8 text (byte 8 of the line)"


def test_all_bad_rows_are_reported_in_line_order(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "data/faq.jsonl", (
        '{"id": "q1", "answer": "a"}\n'
        '{"id": "q2"}\n'
        '{"id": "q3", "answer": "c",}\n'
        '[1]\n'
        '{"id": "q1"}\n'
    ))
    assert error_of(spec, "data/faq.jsonl", id_field="id", expected_field="answer") == (
        "4 problems in dataset data/faq.jsonl:\n"
        "  data/faq.jsonl:2: missing field 'answer' (task.expected) in 2 rows: line 2, line 5\n"
        "  data/faq.jsonl:3: invalid JSON: Expecting property name enclosed in double quotes"
        " (column 28)\n"
        "  data/faq.jsonl:4: a row must be a JSON object, got list\n"
        "  data/faq.jsonl:5: duplicate id 'q1' (first at line 1)"
    )


def test_many_problems_are_capped(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.jsonl", "[]\n" * 25)
    lines = error_of(spec, "d.jsonl").splitlines()
    assert lines[0] == "25 problems in dataset d.jsonl:"
    assert lines[1] == "  d.jsonl:1: a row must be a JSON object, got list"
    assert lines[20] == "  d.jsonl:20: a row must be a JSON object, got list"
    assert lines[21:] == ["  ... and 5 more"]


@pytest.mark.parametrize("text", ["", "\n  \n\n"])
def test_empty_dataset(tmp_path: Path, spec: Path, text: str) -> None:
    write(tmp_path, "data/faq.jsonl", text)
    assert error_of(spec, "data/faq.jsonl") == "data/faq.jsonl: the dataset has no cases"


# --- other formats' errors ---------------------------------------------------------


def test_csv_errors(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.csv", "id,q,q,\n1,a,b,c\n2,a\n")
    assert error_of(spec, "d.csv") == (
        "3 problems in dataset d.csv:\n"
        "  d.csv:1: duplicate column 'q' in the header\n"
        "  d.csv:1: empty column name in the header (column 4)\n"
        "  d.csv:3: row has 2 values, the header has 4"
    )


def test_csv_missing_expected_and_duplicates(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.csv", "id,q\nx,1\nx,2\n")
    assert error_of(spec, "d.csv", id_field="id", expected_field="a") == (
        "2 problems in dataset d.csv:\n"
        "  d.csv:2: missing field 'a' (task.expected) in every row (2 rows)\n"
        "  d.csv:3: duplicate id 'x' (first at line 2)"
    )


def test_a_field_missing_from_many_rows_is_one_problem(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.jsonl", jsonl(*({"id": str(i), "q": "x"} for i in range(500))))
    assert error_of(spec, "d.jsonl", id_field="id", expected_field="answer", input_field="question") == (
        "2 problems in dataset d.jsonl:\n"
        "  d.jsonl:1: missing field 'answer' (task.expected) in every row (500 rows)\n"
        "  d.jsonl:1: missing field 'question' (task.input) in every row (500 rows)"
    )
    rows = [{"id": str(i), "answer": "a"} if i % 2 else {"id": str(i)} for i in range(20)]
    write(tmp_path, "e.jsonl", jsonl(*rows))
    assert error_of(spec, "e.jsonl", id_field="id", expected_field="answer") == (
        "e.jsonl:1: missing field 'answer' (task.expected) in 10 rows: line 1, line 3, line 5, line 7, line 9, ..."
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "invalid JSON: values nest too deeply"),
        ('{"id": ' + "9" * 5000 + "}", "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion"),
    ],
)
def test_jsonl_rows_that_python_cannot_read_are_bad_rows(tmp_path: Path, spec: Path, line: str, message: str) -> None:
    write(tmp_path, "d.jsonl", '{"id": "a"}\n' + line + "\n")
    assert error_of(spec, "d.jsonl").startswith(f"d.jsonl:2: {message}")


def test_a_dataset_path_the_system_refuses_is_a_problem(tmp_path: Path, spec: Path) -> None:
    (tmp_path / "loop.jsonl").symlink_to(tmp_path / "loop.jsonl")
    assert check_task(TaskSpec(dataset=Path("loop.jsonl")), spec) == [
        f"dataset file not found: loop.jsonl (resolved to {tmp_path / 'loop.jsonl'})"
    ]
    long = "x" * 300 + ".jsonl"
    assert check_task(TaskSpec(dataset=Path(long)), spec) == [
        f"dataset file cannot be read: {long[:60]}... (306 characters) (File name too long)"
    ]


def test_csv_header_only_is_empty(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.csv", "id,q\n")
    assert error_of(spec, "d.csv") == "d.csv: the dataset has no cases"


def test_csv_invalid_utf8(tmp_path: Path, spec: Path) -> None:
    (tmp_path / "d.csv").write_bytes(b"a\n\xff\n")
    assert error_of(spec, "d.csv").startswith("d.csv:")
    assert error_of(spec, "d.csv").endswith(": not valid UTF-8 text")


def test_yaml_syntax_error(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.yaml", "- a: 1\n- b: [1, 2\n")
    assert error_of(spec, "d.yaml") == (
        "d.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'"
    )


def test_yaml_duplicate_key(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.yaml", "- a: 1\n  a: 2\n")
    assert error_of(spec, "d.yaml").startswith("d.yaml:2:3: invalid YAML: found duplicate key")


def test_yaml_not_a_list(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.yaml", "a: 1\n")
    assert error_of(spec, "d.yaml") == (
        "d.yaml:1: a YAML dataset must be a list of mappings, got mapping"
    )


def test_yaml_row_errors(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.yaml", "- {id: a}\n- [x]\n- {id: a, t: !custom v}\n- {1: x}\n- {id: a}\n")
    assert error_of(spec, "d.yaml", id_field="id") == (
        "4 problems in dataset d.yaml:\n"
        "  d.yaml:2: a row must be a mapping, got list\n"
        "  d.yaml:3: field 't' holds an unsupported value of type TaggedScalar\n"
        "  d.yaml:4: field names must be strings, got integer 1\n"
        "  d.yaml:5: duplicate id 'a' (first at line 1)"
    )


def test_yaml_empty_file(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "d.yaml", "# nothing yet\n")
    assert error_of(spec, "d.yaml") == "d.yaml: the dataset has no cases"


def test_json_errors(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "a.json", '[\n  {"id": 1},\n  {"id": 2,}\n]\n')
    assert error_of(spec, "a.json") == (
        "a.json:3: invalid JSON: Expecting property name enclosed in double quotes (column 12)"
    )
    write(tmp_path, "b.json", '{"cases": []}')
    assert error_of(spec, "b.json") == (
        "b.json:1: a JSON dataset must be a list of objects, got object"
    )
    write(tmp_path, "c.json", '[{"id": 1},\n 5]')
    assert error_of(spec, "c.json") == "c.json:2: a row must be a JSON object, got integer"
    write(tmp_path, "d.json", "[]")
    assert error_of(spec, "d.json") == "d.json: the dataset has no cases"


def test_inline_errors(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    task = TaskSpec(cases=({"id": "a"}, ["x"], {"id": "a"}, {"q": 1}), id_field="id")
    with pytest.raises(DatasetError) as info:
        load_cases(task, tmp_path / "s.yaml")
    assert str(info.value) == (
        "3 problems in task.cases of s.yaml:\n"
        "  s.yaml: task.cases[1]: a row must be a mapping, got list\n"
        "  s.yaml: task.cases[2]: duplicate id 'a' (first at task.cases[0])\n"
        "  s.yaml: task.cases[3]: missing field 'id' (task.id)"
    )


def test_inline_empty(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"^s\.yaml: task\.cases: the dataset has no cases$"):
        load_cases(TaskSpec(cases=()), tmp_path / "s.yaml")


# --- check_task --------------------------------------------------------------------


def test_check_task_accepts_every_format_without_reading(
    tmp_path: Path, spec: Path, monkeypatch: Any
) -> None:
    names = ["a.jsonl", "b.ndjson", "c.csv", "d.yaml", "e.yml", "f.json", "G.JSONL"]
    for name in names:
        write(tmp_path, name, "{{{ not valid in any format\n")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("check_task read the file")

    monkeypatch.setattr(Path, "open", refuse)
    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(Path, "read_text", refuse)
    monkeypatch.setattr("builtins.open", refuse)
    for name in names:
        assert check_task(TaskSpec(dataset=Path(name)), spec) == []


def test_check_task_missing_file(tmp_path: Path, spec: Path) -> None:
    resolved = (tmp_path / "data" / "faq.jsonl").resolve()
    assert check_task(TaskSpec(dataset=Path("data/faq.jsonl")), spec) == [
        f"dataset file not found: data/faq.jsonl (resolved to {resolved})"
    ]


def test_check_task_not_a_file(tmp_path: Path, spec: Path) -> None:
    (tmp_path / "data.jsonl").mkdir()
    resolved = (tmp_path / "data.jsonl").resolve()
    assert check_task(TaskSpec(dataset=Path("data.jsonl")), spec) == [
        f"dataset path is not a file: data.jsonl (resolved to {resolved})"
    ]


def test_check_task_unknown_extensions(tmp_path: Path, spec: Path) -> None:
    write(tmp_path, "faq.txt", "x")
    write(tmp_path, "faq", "x")
    formats = ".jsonl, .ndjson, .csv, .yaml, .yml or .json"
    assert check_task(TaskSpec(dataset=Path("faq.txt")), spec) == [
        f"unsupported dataset format '.txt': faq.txt (use {formats})"
    ]
    assert check_task(TaskSpec(dataset=Path("faq")), spec) == [
        f"dataset file has no extension: faq (use {formats})"
    ]


def test_check_task_shape(spec: Path) -> None:
    assert check_task(TaskSpec(), spec) == ["task has neither a dataset nor inline cases"]
    assert check_task(TaskSpec(cases=({"a": 1},), sample=0), spec) == [
        "task.sample must be at least 1, got 0"
    ]
    assert check_task(TaskSpec(cases=({"a": 1},)), spec) == []


def test_load_cases_raises_what_check_task_finds(tmp_path: Path, spec: Path) -> None:
    resolved = (tmp_path / "nope.jsonl").resolve()
    assert error_of(spec, "nope.jsonl") == (
        f"dataset file not found: nope.jsonl (resolved to {resolved})"
    )


# --- import and speed --------------------------------------------------------------


def test_import_reads_nothing_heavy() -> None:
    code = "import sys, llmopt.dataset; print(any(m.startswith('ruamel') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ten_thousand_rows_load_quickly(tmp_path: Path, spec: Path) -> None:
    rows = ({"id": f"q{i}", "question": "What are the opening hours?", "answer": "9-5"}
            for i in range(10_000))
    write(tmp_path, "big.jsonl", jsonl(*rows))
    start = time.perf_counter()
    cases = load(spec, "big.jsonl", id_field="id", expected_field="answer")
    assert len(cases) == 10_000
    assert time.perf_counter() - start < 1.0

"""Training data for fine-tuning: splits, training sets, leaks, validation, spec edits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmopt.dataset import load_cases, load_training_cases
from llmopt.errors import DatasetError, FineTuneError
from llmopt.finetune import (
    ChatExample,
    find_leaks,
    normalize_text,
    read_training_file,
    training_set,
    validate_examples,
    write_model_id,
)
from llmopt.spec import load_scenario

QUESTIONS = [
    ("q01", "How long is the refund window for online orders?", "30 days"),
    ("q02", "Can I return an item bought in a store to the website?", "No, only in a store"),
    ("q03", "Do you ship to Canada?", "Yes, in 5 to 7 days"),
    ("q04", "What payment methods do you accept?", "Cards and PayPal"),
    ("q05", "How do I reset my account password?", "Use the forgot password link"),
    ("q06", "Is gift wrapping available at checkout?", "Yes, for 3 dollars"),
    ("q07", "Where can I track my parcel?", "On the orders page"),
    ("q08", "Can I change the delivery address after ordering?", "Within one hour"),
    ("q09", "Do gift cards expire?", "Never"),
    ("q10", "What is the warranty on electronics?", "Two years"),
    ("q11", "Are there student discounts?", "Ten percent with a student card"),
    ("q12", "How do I cancel my subscription?", "From the account settings"),
]


def write_rows(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = [json.dumps({"id": i, "question": q, "answer": a}) for i, q, a in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_spec(folder: Path, task: str, extra: str = "") -> Path:
    spec = folder / "faq.yaml"
    spec.write_text(
        "llmopt: 1\n"
        "scenario: faq\n"
        f"task:\n{task}"
        "recipe:\n"
        "  system: You answer questions about Acme's shop in a few words.\n"
        '  template: "Question: {{ question }}"\n'
        "model:\n"
        "  provider: echo\n" + extra,
        encoding="utf-8",
    )
    return spec


@pytest.fixture
def split_spec(tmp_path: Path) -> Path:
    write_rows(tmp_path / "faq.jsonl", QUESTIONS)
    task = "  dataset: faq.jsonl\n  id: id\n  expected: answer\n  input: question\n  split: {train: 0.5, seed: 7}\n"
    return write_spec(tmp_path, task)


# -- task.split and task.train ---------------------------------------------------------------


def test_split_is_seeded_disjoint_and_evaluation_uses_the_rest(split_spec: Path) -> None:
    task = load_scenario(split_spec).variants["default"].task
    train = [c.id for c in load_training_cases(task, split_spec)]
    evaluation = [c.id for c in load_cases(task, split_spec)]
    assert len(train) + len(evaluation) == 12 and 3 <= len(train) <= 9  # about half, by id hash
    assert set(train).isdisjoint(evaluation)
    assert sorted(train + evaluation) == [q[0] for q in QUESTIONS]
    assert train == sorted(train) and evaluation == sorted(evaluation)  # dataset order kept
    again = [c.id for c in load_training_cases(load_scenario(split_spec).variants["default"].task, split_spec)]
    assert again == train


def test_split_seed_changes_the_split(split_spec: Path) -> None:
    text = split_spec.read_text().replace("seed: 7", "seed: 8")
    split_spec.write_text(text)
    task = load_scenario(split_spec).variants["default"].task
    other = {c.id for c in load_training_cases(task, split_spec)}
    split_spec.write_text(text.replace("seed: 8", "seed: 7"))
    task7 = load_scenario(split_spec).variants["default"].task
    assert other != {c.id for c in load_training_cases(task7, split_spec)}


def test_sample_applies_to_the_evaluation_part_only(split_spec: Path) -> None:
    split_spec.write_text(split_spec.read_text().replace("  split:", "  sample: 3\n  split:"))
    task = load_scenario(split_spec).variants["default"].task
    train = {c.id for c in load_training_cases(task, split_spec)}
    evaluation = {c.id for c in load_cases(task, split_spec)}
    assert len(train) + len(load_cases(replace_sample(task), split_spec)) == 12
    assert len(evaluation) == 3 and train.isdisjoint(evaluation)


def replace_sample(task: Any) -> Any:
    from dataclasses import replace

    return replace(task, sample=None)


def test_split_is_stable_as_the_dataset_grows(tmp_path: Path) -> None:
    write_rows(tmp_path / "faq.jsonl", QUESTIONS[:8])
    spec = write_spec(tmp_path, "  dataset: faq.jsonl\n  id: id\n  expected: answer\n  split: {train: 0.5, seed: 3}\n")
    task = load_scenario(spec).variants["default"].task
    before = {c.id for c in load_training_cases(task, spec)}
    write_rows(tmp_path / "faq.jsonl", QUESTIONS)  # four cases appended
    after = {c.id for c in load_training_cases(task, spec)}
    assert before == after & {q[0] for q in QUESTIONS[:8]}


def test_split_that_leaves_a_side_empty_is_an_error(tmp_path: Path) -> None:
    write_rows(tmp_path / "faq.jsonl", QUESTIONS[:2])
    spec = write_spec(tmp_path, "  dataset: faq.jsonl\n  id: id\n  expected: answer\n  split: {train: 0.1}\n")
    task = load_scenario(spec).variants["default"].task
    with pytest.raises(DatasetError, match=r"task.split of 2 case\(s\) leaves no training cases \(train 0, rest 2\)"):
        load_cases(task, spec)


def test_train_file_uses_the_field_mapping_and_leaves_evaluation_alone(tmp_path: Path) -> None:
    write_rows(tmp_path / "eval.jsonl", QUESTIONS[:4])
    write_rows(tmp_path / "train.jsonl", QUESTIONS[4:])
    spec = write_spec(tmp_path, "  dataset: eval.jsonl\n  train: train.jsonl\n  id: id\n  expected: answer\n")
    task = load_scenario(spec).variants["default"].task
    assert task.train == (tmp_path / "train.jsonl").absolute()
    assert [c.id for c in load_training_cases(task, spec)] == [q[0] for q in QUESTIONS[4:]]
    assert [c.id for c in load_cases(task, spec)] == [q[0] for q in QUESTIONS[:4]]


def test_no_training_data_is_a_clear_error(tmp_path: Path) -> None:
    write_rows(tmp_path / "faq.jsonl", QUESTIONS)
    spec = write_spec(tmp_path, "  dataset: faq.jsonl\n  expected: answer\n")
    with pytest.raises(DatasetError, match="set task.train .* or task.split"):
        training_set(load_scenario(spec), "default")


# -- training_set ------------------------------------------------------------------------------


def test_training_set_lines_equal_the_training_cases(split_spec: Path) -> None:
    scenario = load_scenario(split_spec)
    data = training_set(scenario, "default")
    train = load_training_cases(scenario.variants["default"].task, split_spec)
    lines = [json.loads(line) for line in data.jsonl().splitlines()]
    expected = [
        {
            "messages": [
                {"role": "system", "content": "You answer questions about Acme's shop in a few words."},
                {"role": "user", "content": f"Question: {case.fields['question']}"},
                {"role": "assistant", "content": case.expected},
            ]
        }
        for case in train
    ]
    assert lines == expected
    assert [e.case_id for e in data.examples] == [c.id for c in train]
    assert [c.id for c in data.eval_cases] == [c.id for c in load_cases(scenario.variants["default"].task, split_spec)]
    assert data.leaks() == []


def test_data_hash_is_the_hash_of_the_written_file(split_spec: Path, tmp_path: Path) -> None:
    import hashlib

    data = training_set(load_scenario(split_spec), "default")
    out = tmp_path / "out" / "train.jsonl"
    data.write(out)
    assert data.data_hash == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    assert [e.messages for e in read_training_file(out)] == [e.messages for e in data.examples]


def test_training_case_without_expected_is_an_error(tmp_path: Path) -> None:
    rows = [json.dumps({"id": f"t{i}", "question": f"q{i}"}) for i in range(3)]
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n")
    write_rows(tmp_path / "eval.jsonl", QUESTIONS[:2])
    spec = write_spec(tmp_path, "  dataset: eval.jsonl\n  train: train.jsonl\n  id: id\n")
    with pytest.raises(FineTuneError, match=r"3 training case\(s\) have no expected output \(field 'expected'"):
        training_set(load_scenario(spec), "default")


def test_unknown_variant_names_the_variants(split_spec: Path) -> None:
    with pytest.raises(FineTuneError, match=r"no variant 'tuned' \(variants: default\)"):
        training_set(load_scenario(split_spec), "tuned")


def test_with_context_puts_retrieved_text_in_the_user_message(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "refunds.md").write_text("# Refunds\n\nOnline orders can be refunded within 30 days.\n")
    (tmp_path / "docs" / "shipping.md").write_text("# Shipping\n\nWe ship to Canada in 5 to 7 days.\n")
    write_rows(tmp_path / "faq.jsonl", QUESTIONS)
    task = "  dataset: faq.jsonl\n  id: id\n  expected: answer\n  split: {train: 0.5, seed: 7}\n"
    spec = write_spec(tmp_path, task, "retrieval:\n  source: docs\n  top_k: 1\n")
    spec.write_text(spec.read_text().replace('"Question: {{ question }}"', '"{{ context }}\\n\\nQuestion: {{ question }}"'))
    scenario = load_scenario(spec)
    plain = training_set(scenario, "default")
    aware = training_set(scenario, "default", with_context=True)
    assert plain.examples[0].messages[1]["content"].startswith("None")
    users = {e.case_id: e.messages[1]["content"] for e in aware.examples}
    retrieved = {case_id: text.split("\n\n")[0] for case_id, text in users.items() if text.startswith("[")}
    assert retrieved, users
    for case_id, context in retrieved.items():
        assert context.startswith(("[refunds.md", "[shipping.md")) and users[case_id].endswith(
            dict((i, q) for i, q, _ in QUESTIONS)[case_id]
        )
    assert aware.data_hash != plain.data_hash


def test_with_context_needs_retrieval(split_spec: Path) -> None:
    with pytest.raises(FineTuneError, match="with context needs retrieval"):
        training_set(load_scenario(split_spec), "default", with_context=True)


# -- find_leaks ----------------------------------------------------------------------------------


def test_normalization_ignores_case_whitespace_and_punctuation() -> None:
    assert normalize_text("  What's  the REFUND\twindow?! ") == "what s the refund window"


def test_find_leaks_finds_planted_exact_and_near_duplicates() -> None:
    train = [(i, q) for i, q, _ in QUESTIONS[:8]]
    evaluation = [
        ("e1", "how long is the REFUND window for online orders"),  # exact after normalizing
        ("e2", "Can I change the delivery adress after ordering?"),  # a typo: near
        ("e3", "Which countries outside Europe do you deliver to?"),  # unrelated
        ("e4", "Is there a loyalty programme?"),
    ]
    leaks = find_leaks(train, evaluation)
    assert [(leak.train_id, leak.eval_id, leak.kind) for leak in leaks] == [("q01", "e1", "exact"), ("q08", "e2", "near")]
    assert leaks[0].similarity == 1.0 and 0.9 <= leaks[1].similarity < 1.0


def test_find_leaks_threshold_controls_near_matches() -> None:
    train = [("t", "Do you ship to Canada and the United States?")]
    evaluation = [("e", "Do you ship to Canada?")]
    assert find_leaks(train, evaluation) == []
    loose = find_leaks(train, evaluation, threshold=0.5)
    assert [(leak.kind, leak.train_id, leak.eval_id) for leak in loose] == [("near", "t", "e")]
    with pytest.raises(ValueError, match="threshold"):
        find_leaks(train, evaluation, threshold=0)


def test_find_leaks_ignores_empty_texts_and_empty_sides() -> None:
    assert find_leaks([("t", "")], [("e", " ?! ")]) == []
    assert find_leaks([], [("e", "x")]) == []
    assert find_leaks([("t", "hello there")], []) == []


# -- validate_examples -------------------------------------------------------------------------


def _example(case_id: str, *messages: tuple[str, object]) -> ChatExample:
    return ChatExample(case_id, tuple({"role": r, "content": c} for r, c in messages))  # type: ignore[misc]


def test_validation_accepts_a_clean_set_and_prices_it() -> None:
    examples = [_example(f"c{i}", ("system", "Be brief."), ("user", f"question {i}" * 10), ("assistant", "yes")) for i in range(10)]
    report = validate_examples(examples, base_model="gpt-4o-mini-2024-07-18", epochs=2)
    assert report.ok and report.examples == 10
    ceil4 = lambda text: -(-len(text) // 4)  # noqa: E731
    expected = sum(3 + (4 + ceil4("Be brief.")) + (4 + ceil4(f"question {i}" * 10)) + (4 + 1) for i in range(10))
    assert report.tokens == expected
    assert report.cost_usd == pytest.approx(report.tokens * 2 * 3.0 / 1e6)
    assert report.lines()[-1] == "valid"


def test_validation_reports_roles_empty_messages_count_and_duplicates() -> None:
    examples = [
        _example("a", ("user", "hi"), ("bot", "hello")),
        _example("b", ("user", "  "), ("assistant", "x")),
        _example("c", ("assistant", "x")),
        _example("d", ("user", "q"), ("assistant", "x")),
        _example("e", ("user", "q"), ("assistant", "x")),
        _example("f", ("user", "q"), ("assistant", "y")),
        _example("g", ("user", "q"), ("assistant", 3)),
        ChatExample("h", ()),
    ]
    report = validate_examples(examples)
    assert not report.ok
    assert report.problems == (
        "example 'a' message 2: unknown role 'bot' (use system, user or assistant)",
        "example 'a': must end with an assistant message (the answer to learn)",
        "example 'b' message 1: empty content",
        "example 'c': no user message",
        "example 'g' message 2: content must be text, got int",
        "example 'h': no messages",
        "8 example(s); at least 10 are needed",
    )
    assert report.warnings == (
        "example 'e' repeats example 'd'",
        "example 'f' has the prompt of 'd' with a different answer",
        "example 'g' has the prompt of 'd' with a different answer",
    )
    assert report.cost_usd is None and "give a base model" in report.lines()[2]


def test_validation_unknown_base_lists_known_prices() -> None:
    report = validate_examples([_example("a", ("user", "q"), ("assistant", "a"))], min_examples=1, base_model="gpt-9")
    assert report.ok and report.cost_usd is None
    assert "no training price for gpt-9 (known: gpt-3.5-turbo-0125, gpt-4.1-2025-04-14" in report.lines()[2]


# -- write_model_id ------------------------------------------------------------------------------

SPEC_WITH_COMMENTS = """\
llmopt: 1
scenario: faq   # the help desk
# The task: questions from the help desk
task:
  dataset: faq.jsonl
  split: {train: 0.3, seed: 7}
model:
  provider: openai
  id: gpt-4o-mini-2024-07-18   # the base
  params: {temperature: 0}
variants:
  base: {}   # as is
  # the fine-tuned model, written by `llmopt finetune wait`
  tuned:
    model:
      id: "placeholder"  # replaced after training
  fresh:
    retrieval: null   # written as null, kept as null
    recipe:
      template: "Q: {{ question }}"
assertions:
  - metric: exact_match
    variant: tuned
    vs: base
"""


def test_write_model_id_keeps_comments_and_changes_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "faq.yaml"
    spec.write_text(SPEC_WITH_COMMENTS)
    write_model_id(spec, "tuned", "ft:gpt-4o-mini-2024-07-18:acme:faq:9zX")
    after = spec.read_text()
    before_lines, after_lines = SPEC_WITH_COMMENTS.splitlines(), after.splitlines()
    changed = [(a, b) for a, b in zip(before_lines, after_lines, strict=True) if a != b]
    assert len(before_lines) == len(after_lines)
    assert changed == [('      id: "placeholder"  # replaced after training', '      id: "ft:gpt-4o-mini-2024-07-18:acme:faq:9zX"  # replaced after training')]


def test_write_model_id_creates_the_model_mapping(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    spec = tmp_path / "faq.yaml"
    spec.write_text(SPEC_WITH_COMMENTS)
    write_model_id(spec, "fresh", "ft:abc", provider="openai")
    write_model_id(spec, "base", "ft:def")
    after = spec.read_text()
    assert "# the fine-tuned model, written by `llmopt finetune wait`" in after
    assert "scenario: faq   # the help desk" in after
    data = YAML(typ="safe").load(after)
    assert data["variants"]["fresh"] == {
        "retrieval": None, "recipe": {"template": "Q: {{ question }}"}, "model": {"id": "ft:abc", "provider": "openai"}
    }
    assert "    retrieval: null   # written as null, kept as null" in after
    assert data["variants"]["base"] == {"model": {"id": "ft:def"}}
    assert "  base: {model: {id: ft:def}} # as is" in after
    assert data["model"]["id"] == "gpt-4o-mini-2024-07-18"


def test_write_model_id_default_variant_edits_the_top_level(tmp_path: Path) -> None:
    spec = tmp_path / "one.yaml"
    spec.write_text("llmopt: 1\nscenario: one\n# model below\nmodel:\n    provider: openai\n    id: gpt-4o-mini   # base\n")
    write_model_id(spec, "default", "ft:one")
    assert spec.read_text() == "llmopt: 1\nscenario: one\n# model below\nmodel:\n    provider: openai\n    id: ft:one   # base\n"


def test_write_model_id_unknown_variant_lists_the_variants(tmp_path: Path) -> None:
    spec = tmp_path / "faq.yaml"
    spec.write_text(SPEC_WITH_COMMENTS)
    with pytest.raises(FineTuneError, match=r"no variant 'tunde' \(variants: base, tuned, fresh\)"):
        write_model_id(spec, "tunde", "ft:x")
    assert spec.read_text() == SPEC_WITH_COMMENTS


# -- the finetune section ------------------------------------------------------------------------


def test_finetune_section_merges_like_other_parts() -> None:
    spec = Path(__file__).parent / "specs" / "valid" / "finetune.yaml"
    variants = load_scenario(spec).variants
    base, tuned, own = variants["base"].finetune, variants["tuned"].finetune, variants["own-train"].finetune
    assert base is not None and tuned is not None and own is None
    assert (base.base, dict(base.hyperparameters), base.suffix, base.training_file) == (
        "gpt-4o-mini-2024-07-18", {"n_epochs": 3}, None, None
    )
    assert dict(tuned.hyperparameters) == {"n_epochs": 3, "learning_rate_multiplier": 0.5}
    assert tuned.suffix == "faq" and tuned.base == "gpt-4o-mini-2024-07-18"
    assert tuned.training_file == (spec.parent.parent / "data" / "qa.jsonl").absolute()
    assert variants["own-train"].task.split is None and variants["own-train"].task.train is not None
    assert variants["base"].task.split is not None and variants["base"].task.split.seed == 3


def test_missing_train_file_is_a_spec_problem_at_its_key(tmp_path: Path) -> None:
    from llmopt.errors import SpecError

    write_rows(tmp_path / "faq.jsonl", QUESTIONS)
    spec = write_spec(tmp_path, "  dataset: faq.jsonl\n  train: data/train.jsonl\n")
    with pytest.raises(SpecError) as info:
        load_scenario(spec, display_path="faq.yaml")
    assert str(info.value).startswith(
        "1 problem in spec:\n  faq.yaml:5:10: task.train: dataset file not found: data/train.jsonl (resolved to "
    )


def test_validation_flags_examples_longer_than_the_base_model_takes() -> None:
    long_text = "word " * 70_000
    examples = [_example("big", ("user", long_text), ("assistant", "ok")), _example("small", ("user", "q"), ("assistant", "a"))]
    report = validate_examples(examples, min_examples=1, base_model="gpt-3.5-turbo-0125")
    assert report.problems == (f"example 'big': ~{report.max_example_tokens} tokens, more than gpt-3.5-turbo-0125 trains on (16385)",)
    assert report.cost_usd == pytest.approx(report.tokens * 3 * 8.0 / 1e6)


def test_write_model_id_keeps_what_comes_before_a_document_start(tmp_path: Path) -> None:
    spec = tmp_path / "top.yaml"
    text = (
        "# yaml-language-server: $schema=../schema.json\n---\nllmopt: 1\nscenario: s   # x\n\n# models\n"
        "variants:\n  a:\n    model: {provider: openai, id: gpt-4o-mini}  # flow\n\n  b: {}\n"
    )
    spec.write_text(text)
    write_model_id(spec, "a", "ft:gpt-4o-mini:acme::x1")
    assert spec.read_text() == text.replace("id: gpt-4o-mini}  # flow", "id: ft:gpt-4o-mini:acme::x1} # flow")

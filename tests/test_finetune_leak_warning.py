"""A fine-tuned variant that records its training file warns when evaluation cases
leaked into it (a pytest warning naming the pairs), without failing the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmopt.finetune import leak_warnings, training_file_leaks
from llmopt.spec import load_scenario

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SPEC = """\
llmopt: 1
scenario: faq
task:
  id: id
  expected: answer
  input: question
  cases:
    - {id: e1, question: "How long is the refund window for online orders?", answer: "30 days"}
    - {id: e2, question: "Can I change the delivery adress after ordering?", answer: "Within one hour"}
    - {id: e3, question: "Is there a loyalty programme?", answer: "Yes"}
recipe:
  template: "Question: {{ question }}"
model:
  provider: echo
variants:
  base: {}
  tuned:
    finetune: {training_file: data/train.jsonl}
assertions:
  - metric: regex
    args: {pattern: "^Question"}
    min: 0.5
"""
TRAIN_QUESTIONS = [
    "How long is the refund window for online orders?",  # e1, exactly
    "Can I change the delivery address after ordering?",  # e2, nearly
    "Do you ship to Canada?",
    "What payment methods do you accept?",
]


def write_project(folder: Path) -> Path:
    (folder / "specs" / "data").mkdir(parents=True)
    lines = [
        json.dumps({"messages": [{"role": "user", "content": f"Question: {q}"}, {"role": "assistant", "content": "x"}]})
        for q in TRAIN_QUESTIONS
    ]
    (folder / "specs" / "data" / "train.jsonl").write_text("\n".join(lines) + "\n")
    spec = folder / "specs" / "faq.yaml"
    spec.write_text(SPEC)
    return spec


def test_training_file_leaks_compares_prompts_with_case_inputs(tmp_path: Path) -> None:
    scenario = load_scenario(write_project(tmp_path))
    leaks = training_file_leaks(tmp_path / "specs" / "data" / "train.jsonl", scenario, "tuned")
    assert [(leak.train_id, leak.eval_id, leak.kind) for leak in leaks] == [("line 1", "e1", "exact"), ("line 2", "e2", "near")]


def test_leak_warnings_name_the_pairs_once_per_variant(tmp_path: Path) -> None:
    scenario = load_scenario(write_project(tmp_path))
    messages = leak_warnings(scenario, lambda p: p.name)
    assert len(messages) == 1
    assert messages[0].startswith(
        "faq::tuned: 2 evaluation case(s) leaked into the training file train.jsonl: "
        "eval 'e1' ~ line 1 (exact); eval 'e2' ~ line 2 (near, 0.9"
    )


def test_missing_training_file_warns(tmp_path: Path) -> None:
    spec = write_project(tmp_path)
    (tmp_path / "specs" / "data" / "train.jsonl").unlink()
    assert leak_warnings(load_scenario(spec), lambda p: p.name) == [
        "faq::tuned: finetune.training_file train.jsonl not found: cannot check it for evaluation cases"
    ]


def test_clean_training_file_gives_no_warning(tmp_path: Path) -> None:
    spec = write_project(tmp_path)
    train = tmp_path / "specs" / "data" / "train.jsonl"
    train.write_text("\n".join(train.read_text().splitlines()[2:]) + "\n")
    assert leak_warnings(load_scenario(spec)) == []


def test_pytest_run_shows_the_leak_warning(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmopt_cache_dir = .cache-llmopt\n")
    write_project(pytester.path)
    result = pytester.runpytest("specs", "-q")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*LeakageWarning: faq::tuned: 2 evaluation case(s) leaked into the training file specs/data/train.jsonl: "
            "eval 'e1' ~ line 1 (exact); eval 'e2' ~ line 2 (near, 0.9*",
        ]
    )

"""Retrieved documents beside answers in the worst-case table, and the relevant-id
check reusing the index's chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmopt.retrieval
from llmopt.engine.results import CaseResult
from llmopt.engine.runner import Runner
from llmopt.registry import create_registry
from llmopt.spec import load_scenario

DOCS = {
    "refunds.md": "# Refunds\n\nMoney comes back within thirty days.",
    "plans.md": "# Plans\n\nThe premium tier costs seven euros.",
}

SPEC = """\
llmopt: 1
scenario: shown
task:
  id: id
  input: question
  expected: answer
  relevant: relevant
  cases:
    - {id: money, question: "thirty money", answer: "refund by cheque", relevant: [refunds.md]}
recipe:
  template: "{{ context }} | {{ question }}"
retrieval:
  source: docs
  top_k: 2
model:
  provider: echo
variants:
  rag: {}
  bare: {retrieval: null, recipe: {template: "{{ question }}"}}
assertions:
  - {metric: contains, variant: rag, min: 1.0}
  - {metric: contains, variant: rag, vs: bare, min_delta: 0.5}
"""


def write(folder: Path) -> Path:
    for name, text in DOCS.items():
        (folder / "docs").mkdir(parents=True, exist_ok=True)
        (folder / "docs" / name).write_text(text, encoding="utf-8")
    path = folder / "spec.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def test_summary_keeps_each_document_once_with_its_best_score() -> None:
    case = CaseResult(
        id="c",
        retrieved=({"id": "a.md#2", "doc_id": "a.md", "score": 0.91234}, {"id": "b.md#1", "doc_id": "b.md", "score": 0.5},
                   {"id": "a.md#1", "doc_id": "a.md", "score": 0.2}),
    )
    assert case.retrieved_summary == ("a.md 0.912", "b.md 0.5")


def test_worst_cases_of_answer_metrics_show_retrieved_ids_and_scores(pytester: pytest.Pytester) -> None:
    write(pytester.path / "specs")
    result = pytester.runpytest("specs", "-p", "no:cacheprovider", "--llmopt-no-cache")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*case*input*expected*output*score*retrieved*", "*money*refunds.md 0.*"])
    result.stdout.fnmatch_lines(["*rag output*bare output*rag retrieved*bare retrieved*", "*refunds.md 0.*| -*"])


def test_relevant_ids_are_checked_against_the_index_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path)

    def reload(*args: object) -> None:
        raise AssertionError("the source was read again to check relevant ids")

    monkeypatch.setattr(llmopt.retrieval, "load_chunks", reload)
    registry = create_registry(entry_points=False)
    result = Runner(registry).evaluate(load_scenario(path, registry), "rag")
    assert result.errors == 0 and result.cases[0].relevant == ("refunds.md",)

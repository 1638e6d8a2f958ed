"""Retrieval metrics, task.relevant and retrieval-only variants (model: null)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from llmopt.dataset import Case
from llmopt.engine.runner import Runner
from llmopt.errors import DatasetError, MetricError, SpecError
from llmopt.metric import Sample, builtin_metrics
from llmopt.registry import create_registry
from llmopt.spec import load_scenario

METRICS = {m.name: m for m in builtin_metrics()}

# A labelled corpus of 5 documents; each query word is in exactly one document.
DOCS = {
    "refunds.md": "# Refunds\n\nMoney comes back within thirty days.",
    "plans.md": "# Plans\n\nThe premium tier costs seven euros.",
    "support.md": "# Support\n\nOur helpdesk answers weekdays.",
    "security.md": "# Security\n\nPasswords are hashed; tokens rotate.",
    "retention/trash.md": "# Trash\n\nDeleted notebooks vanish after sixty days.",
}


def sample(retrieved: tuple[str, ...], relevant: tuple[str, ...] | None) -> Sample:
    return Sample(case=Case(id="c", relevant=relevant), output="", retrieved=retrieved)


# -- the metrics against hand-computed values -----------------------------------------

RANKED = ("a.md", "b.md", "c.md", "d.md")
RELEVANT = ("b.md", "d.md", "e.md")
DCG4 = 1 / math.log2(3) + 1 / math.log2(5)  # relevant at ranks 2 and 4
IDCG3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # 3 relevant documents at ranks 1..3


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("recall_at_k", {}, 2 / 3),
        ("recall_at_k", {"k": 2}, 1 / 3),
        ("recall_at_k", {"k": 1}, 0.0),
        ("precision_at_k", {}, 2 / 4),
        ("precision_at_k", {"k": 2}, 1 / 2),
        ("precision_at_k", {"k": 5}, 2 / 5),  # a missing rank counts as not relevant
        ("mrr", {}, 1 / 2),
        ("mrr", {"k": 1}, 0.0),
        ("ndcg_at_k", {}, DCG4 / IDCG3),
        ("ndcg_at_k", {"k": 2}, (1 / math.log2(3)) / (1 + 1 / math.log2(3))),
        ("hit_rate", {"k": 1}, 0.0),
        ("hit_rate", {"k": 2}, 1.0),
    ],
)
def test_metric_matches_hand_computed_value(name: str, args: dict[str, Any], expected: float) -> None:
    assert METRICS[name].score(sample(RANKED, RELEVANT), args) == pytest.approx(expected)


def test_precision_without_k_divides_by_top_k_not_by_the_number_retrieved() -> None:
    # top_k 4 chunks, two of them from one document: 3 documents retrieved, 1 relevant.
    found = Sample(case=Case(id="c", relevant=("b.md",)), output="", retrieved=("a.md", "b.md", "c.md"), top_k=4)
    assert METRICS["precision_at_k"].score(found, {}) == pytest.approx(1 / 4)
    assert METRICS["precision_at_k"].score(found, {"k": 2}) == pytest.approx(1 / 2)
    assert METRICS["recall_at_k"].score(found, {}) == 1.0


def test_perfect_ranking_scores_one_and_nothing_retrieved_scores_zero() -> None:
    for name in ("recall_at_k", "precision_at_k", "mrr", "ndcg_at_k", "hit_rate"):
        assert METRICS[name].score(sample(("b.md", "a.md"), ("b.md",)), {"k": 1}) == 1.0
        assert METRICS[name].score(sample((), ("b.md",)), {}) == 0.0


@pytest.mark.parametrize("relevant", [None, ()])
def test_case_without_relevant_documents_is_a_metric_error(relevant: tuple[str, ...] | None) -> None:
    with pytest.raises(MetricError) as info:
        METRICS["recall_at_k"].score(sample(RANKED, relevant), {})
    assert str(info.value) == "metric 'recall_at_k' needs the case's relevant documents; set task.relevant"


@pytest.mark.parametrize("k", [0, -1, "2", 1.5, True])
def test_k_must_be_a_positive_integer(k: Any) -> None:
    assert METRICS["ndcg_at_k"].check_args({"k": k}) == [
        f"argument 'k' of metric 'ndcg_at_k' must be an integer >= 1, got {k!r}"
    ]
    assert METRICS["mrr"].check_args({"k": 3}) == []


def test_retrieval_metrics_need_no_output_and_answer_metrics_do() -> None:
    assert not METRICS["mrr"].needs_output and METRICS["mrr"].needs_retrieval
    assert METRICS["contains"].needs_output and not METRICS["contains"].needs_retrieval


# -- through the runner: a labelled 5-document corpus ---------------------------------


def write_corpus(tmp_path: Path) -> None:
    for name, text in DOCS.items():
        path = tmp_path / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


SPEC = """\
llmopt: 1
scenario: labelled
task:
  id: id
  expected: question
  relevant: relevant
  cases:
    - {id: money, question: "thirty money", relevant: [refunds.md]}
    - {id: tier, question: "premium weekdays", relevant: [plans.md, security.md]}
    - {id: trash, question: "notebooks", relevant: [retention/trash.md, refunds.md]}
    - {id: none, question: "passwords", relevant: [support.md]}
recipe:
  template: "{{ context }} | {{ question }}"
retrieval:
  source: docs
  top_k: 3
model:
  provider: echo
variants:
  answer: {}
  retriever: {model: null}
assertions:
  - {metric: recall_at_k, min: 0.0}
  - {metric: mrr, min: 0.0}
  - {metric: contains, variant: answer, min: 0.0}
"""


def evaluate(tmp_path: Path, spec: str, variant: str) -> Any:
    path = tmp_path / "spec.yaml"
    path.write_text(spec, encoding="utf-8")
    registry = create_registry(entry_points=False)
    return Runner(registry, cache=None).evaluate(load_scenario(path, registry), variant)


def test_runner_scores_retrieval_of_each_case(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    result = evaluate(tmp_path, SPEC, "retriever")
    retrieved = {c.id: c.retrieved_documents for c in result.cases}
    assert retrieved["money"] == ("refunds.md",)
    assert set(retrieved["tier"]) == {"plans.md", "support.md"}
    assert retrieved["trash"] == ("retention/trash.md",)
    assert retrieved["none"] == ("security.md",)
    recall = {c.id: c.scores["recall_at_k"] for c in result.cases}
    mrr = {c.id: c.scores["mrr"] for c in result.cases}
    assert recall == {"money": 1.0, "tier": 0.5, "trash": 0.5, "none": 0.0}
    tier_rank = retrieved["tier"].index("plans.md") + 1
    assert mrr == {"money": 1.0, "tier": 1 / tier_rank, "trash": 1.0, "none": 0.0}
    assert result.metrics["recall_at_k"].value == pytest.approx(2.0 / 4)
    assert result.metrics["mrr"].value == pytest.approx((2.0 + 1 / tier_rank) / 4)


def test_retrieval_only_variant_generates_nothing_and_keeps_doc_ids(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    result = evaluate(tmp_path, SPEC, "retriever")
    money = next(c for c in result.cases if c.id == "money")
    assert money.outputs == () and money.error is None and money.usage.calls == 0
    assert money.relevant == ("refunds.md",)
    assert [dict(r) for r in money.retrieved] == [{"id": "refunds.md#1", "doc_id": "refunds.md", "score": pytest.approx(money.retrieved[0]["score"])}]
    assert result.identity["provider"] is None and result.identity["retrieval"] == "docs"
    data = money.to_json()
    assert data["output"] is None and data["relevant"] == ["refunds.md"]


def test_generating_variant_gets_the_same_retrieval_scores(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    answer = evaluate(tmp_path, SPEC, "answer")
    retriever = evaluate(tmp_path, SPEC, "retriever")
    assert {c.id: c.scores["recall_at_k"] for c in answer.cases} == {
        c.id: c.scores["recall_at_k"] for c in retriever.cases
    }
    assert "thirty days" in next(c.output for c in answer.cases if c.id == "money")


def test_chunks_of_one_document_count_once_at_their_best_rank(tmp_path: Path) -> None:
    (tmp_path / "rank.py").write_text(
        "def search(query, top_k):\n"
        "    ids = ['a.md#2', 'b.md#1', 'a.md#1', 'c.md#3']\n"
        "    return [{'id': i, 'text': i, 'score': 1.0 / n} for n, i in enumerate(ids, 1)]\n",
        encoding="utf-8",
    )
    spec = SPEC.replace("  source: docs\n", "  retriever: python\n  options: {function: rank.py:search}\n").replace(
        "top_k: 3", "top_k: 4"
    )
    result = evaluate(tmp_path, spec, "retriever")
    case = next(c for c in result.cases if c.id == "tier")
    assert case.retrieved_documents == ("a.md", "b.md", "c.md")
    # relevant: plans.md, security.md -> none retrieved
    assert case.scores == {"recall_at_k": 0.0, "mrr": 0.0}


def test_case_without_relevant_field_is_a_case_error(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    spec = SPEC.replace(', relevant: [support.md]}', "}")
    result = evaluate(tmp_path, spec, "retriever")
    none = next(c for c in result.cases if c.id == "none")
    assert none.error.endswith("case 'none': metric 'recall_at_k' needs the case's relevant documents; set task.relevant")
    assert result.errors == 1


def test_unknown_relevant_id_is_a_dataset_error_before_generating(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    spec = SPEC.replace("[plans.md, security.md]", "[plan.md, security.md]")
    with pytest.raises(DatasetError) as info:
        evaluate(tmp_path, spec, "answer")
    assert str(info.value) == (
        "spec.yaml [labelled::answer]: task.relevant (field 'relevant') names documents that are not in"
        " retrieval.source docs:\n"
        f"  case 'tier' ({tmp_path / 'spec.yaml'}): unknown document 'plan.md'\n"
        "known documents: plans.md, refunds.md, retention/trash.md, security.md, support.md"
    )


def test_relevant_field_must_hold_document_ids(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    spec = SPEC.replace("[refunds.md]", "{doc: refunds.md}")
    with pytest.raises(DatasetError, match=r"field 'relevant' \(task.relevant\) must be a list of document ids"):
        evaluate(tmp_path, spec, "retriever")


# -- collection errors ------------------------------------------------------------------


def problems(tmp_path: Path, spec: str) -> str:
    write_corpus(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(spec, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_scenario(path, create_registry(entry_points=False), display_path="spec.yaml")
    return str(info.value)


def test_answer_metric_on_a_retrieval_only_variant(tmp_path: Path) -> None:
    spec = SPEC.replace("variant: answer, min", "variant: retriever, min")
    assert problems(tmp_path, spec) == (
        "1 problem in spec:\n"
        "  spec.yaml:25:14: assertions[2].metric: metric 'contains' reads the model's output,"
        " but variant 'retriever' has no model (a retrieval-only variant: only retrieval metrics apply)"
    )


def test_answer_metric_without_variant_skips_retrieval_only_variants(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("variant: answer, min", "min"), encoding="utf-8")
    scenario = load_scenario(path, create_registry(entry_points=False))
    assert [(a.metric, a.variant) for a in scenario.assertions] == [
        ("recall_at_k", "answer"),
        ("recall_at_k", "retriever"),
        ("mrr", "answer"),
        ("mrr", "retriever"),
        ("contains", "answer"),
    ]


def test_answer_metric_with_only_retrieval_only_variants(tmp_path: Path) -> None:
    spec = SPEC.replace("  answer: {}\n", "").replace(", variant: answer", "")
    assert problems(tmp_path, spec) == (
        "1 problem in spec:\n"
        "  spec.yaml:24:14: assertions[2].metric: metric 'contains' applies to no variant:"
        " variant 'retriever' has no model (a retrieval-only variant: only retrieval metrics apply)"
    )


def test_variant_without_model_and_retrieval(tmp_path: Path) -> None:
    spec = SPEC.replace("retriever: {model: null}", "retriever: {model: null, retrieval: null}")
    assert problems(tmp_path, spec) == (
        "1 problem in spec:\n"
        "  spec.yaml:21:3: variants.retriever: has no model and no retrieval after merge:"
        " give a model (or retrieval, for a retrieval-only variant)"
    )


def test_bad_top_k_and_k(tmp_path: Path) -> None:
    spec = SPEC.replace("top_k: 3", "top_k: 0").replace(
        "{metric: mrr, min: 0.0}", '{metric: mrr, args: {k: "2"}, min: 0.0}'
    )
    assert problems(tmp_path, spec) == (
        "2 problems in spec:\n"
        "  spec.yaml:16:10: retrieval.top_k: must be >= 1, got 0\n"
        "  spec.yaml:24:19: assertions[1].args: argument 'k' of metric 'mrr' must be an integer >= 1, got '2'"
    )


# -- through pytest -------------------------------------------------------------------

AGENT = "def answer(prompt):\n    open('calls.log', 'a').write('x')\n    return prompt\n"


def test_retrieval_only_variant_runs_under_pytest_without_provider_calls(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmopt_cache_dir = .cache-llmopt\n")
    write_corpus(pytester.path / "specs")
    (pytester.path / "specs" / "agent.py").write_text(AGENT, encoding="utf-8")
    spec = SPEC.replace("provider: echo", "provider: python\n  id: agent.py:answer")
    spec = spec.replace("  - {metric: contains, variant: answer, min: 0.0}\n", "")
    spec = spec.replace("{metric: recall_at_k, min: 0.0}", "{metric: recall_at_k, variant: retriever, min: 0.5}")
    spec = spec.replace("{metric: mrr, min: 0.0}", "{metric: hit_rate, variant: retriever, args: {k: 1}, min: 0.8}")
    (pytester.path / "specs" / "spec.yaml").write_text(spec, encoding="utf-8")
    result = pytester.runpytest("specs", "--llmopt-json", "r.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*hit_rate of retriever = 0.500*", "*retrieved: security.md*"])
    assert not (pytester.path / "calls.log").exists() and not (pytester.path / "specs" / "calls.log").exists()
    doc = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    variant = doc["scenarios"][0]["variants"]["retriever"]
    assert variant["usage"]["calls"] == 0 and variant["errors"] == 0


def test_unknown_relevant_id_is_an_error_item_under_pytest(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmopt_cache_dir = .cache-llmopt\n")
    write_corpus(pytester.path / "specs")
    spec = SPEC.replace("[refunds.md]", "[refund.md]").replace("  - {metric: contains, variant: answer, min: 0.0}\n", "")
    (pytester.path / "specs" / "spec.yaml").write_text(spec, encoding="utf-8")
    result = pytester.runpytest("specs", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(["*case 'money'*unknown document 'refund.md'*"])

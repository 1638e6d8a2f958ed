"""The results file is streamed case by case from the runner's own case results: the
same document as the whole-document writer made (keys, order, values), a record per
line, no second copy of the cases in the store, and never the whole text in memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from llmopt.engine.results import AssertionOutcome, CaseResult, MetricValue, Usage, VariantResult
from llmopt.report import ResultsStore, write_reports
from llmopt.report._format import ReportTarget
from llmopt.report._store import CaseRecords, plain

SPEC = "specs/helpdesk.yaml"


def _case(i: int, **extra: Any) -> CaseResult:
    return CaseResult(
        id=f"q{i}", input=f"question {i} ü", expected=f"answer {i}", outputs=(f"answer {i}",), latencies_s=(0.25,),
        scores={"exact_match": float(i % 2), "judge_ok": 1.0}, usage=Usage(input_tokens=5, output_tokens=2, calls=1),
        served={"model": "gpt-4o-mini", "system_fingerprint": "fp_1", "finish_reason": "stop"},
        prompt_hash="sha256:0123456789ab", **extra,
    )


def _rich_cases() -> tuple[CaseResult, ...]:
    """Cases with judges, retrieval, repeats, an error, a recipe, a cluster and a lone surrogate."""
    return (
        _case(1, judges={"judge_ok": {"verdict": "yes", "score": 1.0, "reason": "fine"}},
              judge_usage=Usage(input_tokens=30, calls=1), recipe={"name": "concise-qa", "version": 2}),
        _case(2, retrieved=({"id": "a.md#0", "doc_id": "a.md", "score": 0.91}, {"id": "b.md#3", "doc_id": "b.md",
              "score": 0.5}), relevant=("a.md",), cluster="billing"),
        CaseResult(id="q3", input="bad \ud800 row", outputs=("x", "y"), latencies_s=(0.1, 0.3),
                   scores={"exact_match": 0.5}, consistency=0.5, cached=1),
        CaseResult(id="q4", input="timeout", error="provider timed out after 30 s", position=7),
    )


def _variant(name: str, cases: tuple[CaseResult, ...], **extra: Any) -> VariantResult:
    metrics = {"exact_match": MetricValue(0.5, len(cases), (0.2, 0.8), 0.1, "wilson"),
               "latency_p95": MetricValue(0.3, len(cases), None, higher_is_better=False)}
    return VariantResult("helpdesk", name, cases, metrics, Usage(input_tokens=20, calls=len(cases), cost_usd=0.01),
                         identity={"model": {"id": "gpt-4o-mini"}}, duration_s=1.23456, identity_hash="sha256:abc",
                         **extra)


def _outcome(variant: str, metric: str, outcome: str, **extra: Any) -> AssertionOutcome:
    return AssertionOutcome(id=f"{SPEC}::helpdesk::{variant}::{metric}>=0.5", scenario="helpdesk", variant=variant,
                            metric=metric, outcome=outcome, observed=0.5, expected=">= 0.5",
                            stats={"kind": "threshold", "ci": [0.2, 0.8], "confidence": 0.95}, **extra)


SEARCH = {
    "space": {"recipe.fields.tone": ["friendly", "terse"]}, "strategy": "grid",
    "candidates": [{"name": "c1", "overrides": {"recipe": {"fields": {"tone": "terse"}}}, "levels": {},
                    "rounds": [{"round": 1, "n": 20, "value": 0.7, "ci": [0.5, 0.9], "se": 0.1}], "dropped_in": None,
                    "error": None}],
    "winner": {"name": "c1", "overrides": {"recipe": {"fields": {"tone": "terse"}}}},
    "effects": [], "usage": {"calls": 40, "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.02, "cache_hits": 0},
}
CONFIRMATION = {"variant": "search", "vs": "baseline", "n": 4, "delta": 0.25, "ci": [0.0, 0.5], "p": 0.04,
                "outcome": "passed", "looks": 1}


def _store() -> tuple[ResultsStore, list[tuple[VariantResult, list[str]]]]:
    """A store as a run fills it (variants added out of spec order, twice for one), and
    what the store before streaming was given (to rebuild its document)."""
    store = ResultsStore()
    order = ["baseline", "rag", "search"]
    rag = _variant("rag", _rich_cases(), judge_usage=Usage(input_tokens=30, calls=1),
                   retrieval_usage=Usage(input_tokens=8, calls=2, cache_hits=1))
    baseline = _variant("baseline", tuple(_case(i) for i in range(1, 5)))
    added = [(rag, order), (baseline, order), (rag, order)]
    for result, names in added:
        store.add_variant(SPEC, result, order=names)
    store.add_search(SPEC, "helpdesk", json.loads(json.dumps(SEARCH)))
    store.set_confirmation(SPEC, "helpdesk", CONFIRMATION)
    store.add_outcome(SPEC, _outcome("rag", "exact_match", "passed"))
    store.add_outcome(SPEC, _outcome("baseline", "exact_match", "failed", message="0.5 < 0.6 <oops>"))
    return store, added


def _old_doc(added: list[tuple[VariantResult, list[str]]]) -> dict[str, Any]:
    """The document the store made before it streamed (each variant's ``to_json()``
    kept as given, ordered as the spec writes them, assertions by id)."""
    variants: dict[str, Any] = {}
    for result, _ in added:
        variants.setdefault(result.variant, result.to_json())
    order = added[0][1]
    search = json.loads(json.dumps(SEARCH)) | {"confirmation": CONFIRMATION}
    outcomes = sorted([_outcome("rag", "exact_match", "passed").to_json(),
                       _outcome("baseline", "exact_match", "failed", message="0.5 < 0.6 <oops>").to_json()],
                      key=lambda a: a["id"])
    entry = {"scenario": "helpdesk", "spec": SPEC, "variants": {n: variants[n] for n in order if n in variants},
             "assertions": outcomes, "search": search}
    return {"llmopt": 1, "scenarios": [entry]}


def _old_text(doc: Any) -> str:
    """How ``ResultsStore.write`` wrote a document before it streamed."""
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def _ordered(text: str) -> Any:
    """The JSON of ``text`` with every object as its list of (key, value) pairs, so two
    documents compare equal only with the same keys in the same order."""
    return json.loads(text, object_pairs_hook=list)


def test_the_written_file_is_the_old_writers_document_key_for_key(tmp_path: Path) -> None:
    store, added = _store()
    path = tmp_path / "out" / "results.json"
    store.write(path)
    text = path.read_text(encoding="utf-8")
    assert _ordered(text) == _ordered(_old_text(_old_doc(added)))
    assert json.loads(text) == json.loads(_old_text(store.to_worker_doc() | {"scenarios": _old_doc(added)["scenarios"]}))
    assert "\\ud800" in text  # the lone surrogate written as its escape, the file UTF-8


def test_each_case_record_is_one_line(tmp_path: Path) -> None:
    store, added = _store()
    path = tmp_path / "results.json"
    store.write(path)
    lines = [line.strip().rstrip(",") for line in path.read_text(encoding="utf-8").splitlines()]
    records = [json.loads(line) for line in lines if line.startswith('{"id": "q')]
    expected = [c.to_json() for result in (added[1][0], added[0][0]) for c in result.cases]
    assert records == expected


def test_a_document_the_caller_extends_is_written_as_given(tmp_path: Path) -> None:
    """A shard's or a merge's document: the store's with keys added, views inside."""
    store, added = _store()
    doc = store.to_doc() | {"merged": {"shards": 4}, "shard": {"k": 1, "n": 4}}
    path = tmp_path / "merged.json"
    store.write(path, doc)
    assert _ordered(path.read_text(encoding="utf-8")) == _ordered(_old_text(_old_doc(added) | doc | {
        "scenarios": _old_doc(added)["scenarios"]}))


def test_worker_documents_are_plain_json_and_merge_into_the_same_file(tmp_path: Path) -> None:
    store, added = _store()
    shipped = json.dumps(store.to_worker_doc())  # as the plugin sends it through workeroutput (no default=)
    controller = ResultsStore()
    controller.merge(json.loads(shipped))
    mine, theirs = tmp_path / "worker.json", tmp_path / "controller.json"
    store.write(mine)
    controller.write(theirs)
    assert _ordered(theirs.read_text(encoding="utf-8")) == _ordered(mine.read_text(encoding="utf-8"))
    assert _ordered(theirs.read_text(encoding="utf-8")) == _ordered(_old_text(_old_doc(added)))
    assert controller.usage_total() == store.usage_total()


def test_the_store_keeps_the_runners_cases_not_a_copy() -> None:
    cases = tuple(_case(i) for i in range(2000))
    result = _variant("baseline", cases)
    store = ResultsStore()
    tracemalloc.start()
    store.add_variant(SPEC, result)
    grown = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    records = store.to_doc()["scenarios"][0]["variants"]["baseline"]["cases"]
    assert isinstance(records, CaseRecords)
    assert grown < 20_000  # the dicts of 2,000 records take well over a megabyte
    assert records == [c.to_json() for c in cases] and records[3] == cases[3].to_json()
    assert records[1:3] == [cases[1].to_json(), cases[2].to_json()] and len(records) == 2000


def test_records_compare_as_lists_and_an_empty_variant_writes_an_empty_list(tmp_path: Path) -> None:
    assert CaseRecords(()) == [] and CaseRecords(()) != [{"id": "x"}]
    assert CaseRecords((_case(1),)) == CaseRecords((_case(1),)) and CaseRecords((_case(1),)) != CaseRecords((_case(2),))
    store = ResultsStore()
    store.add_variant(SPEC, _variant("baseline", ()))
    store.write(tmp_path / "empty.json")
    assert json.loads((tmp_path / "empty.json").read_text(encoding="utf-8"))["scenarios"][0]["variants"]["baseline"][
        "cases"] == []
    with pytest.raises(TypeError):
        json.dumps(store.to_doc())  # the views are for llmopt's readers; plain() makes data for anyone else
    assert json.loads(json.dumps(plain(store.to_doc()))) == json.loads((tmp_path / "empty.json").read_text())


class _Dumps:
    """A plugin's report format that hands the document to ``json.dumps``."""

    name, suffixes = "dumps", (".dumps",)

    def write(self, results: Any, path: Path) -> None:
        path.write_text(json.dumps(results), encoding="utf-8")


def test_the_json_report_and_a_plugins_format_get_the_same_document(tmp_path: Path) -> None:
    from llmopt.report._builtin_formats import builtin_formats_by_name

    store, added = _store()
    targets = [ReportTarget(tmp_path / "report.json", builtin_formats_by_name()["json"]),
               ReportTarget(tmp_path / "report.dumps", _Dumps())]
    lines = write_reports(store.to_doc(), targets)
    assert lines == [f"report: {tmp_path / 'report.json'}", f"report: {tmp_path / 'report.dumps'}"]
    old = _ordered(_old_text(_old_doc(added)))
    assert _ordered((tmp_path / "report.json").read_text(encoding="utf-8")) == old
    assert _ordered((tmp_path / "report.dumps").read_text(encoding="utf-8")) == old


def _peak_bytes(write: Any) -> int:
    tracemalloc.start()
    try:
        write()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_writing_20000_cases_never_holds_the_whole_text(tmp_path: Path) -> None:
    """Peak memory allocated while writing, against the size of the file and against
    the whole-document writer on the same document (which builds all of its text)."""
    cases = tuple(CaseResult(id=f"c{i}", input=f"q{i}", outputs=(f"a{i}",), scores={"m": 1.0}) for i in range(20_000))
    store = ResultsStore()
    store.add_variant(SPEC, _variant("big", cases))
    path = tmp_path / "big.json"
    streamed = _peak_bytes(lambda: store.write(path))
    size = path.stat().st_size
    doc = store.to_worker_doc()  # the records as dicts: what the store used to keep
    old = tmp_path / "old.json"
    whole = _peak_bytes(lambda: old.write_text(_old_text(doc), encoding="utf-8"))
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(old.read_text(encoding="utf-8"))
    assert size > 5_000_000
    assert streamed < size / 3, (streamed, size)
    assert streamed * 5 < whole, (streamed, whole)

"""Shards of a dataset: a stable split by case id, the K/N form, and the case records
a merge reads back exactly as the runner made them."""

from __future__ import annotations

from collections import Counter

import pytest

from llmopt.dataset import Case
from llmopt.dataset._shard import Shard, ShardError, parse_shard, shard_of
from llmopt.engine._records import case_from_json, variant_from_json
from llmopt.engine.results import CaseResult, MetricValue, Usage, VariantResult


def test_the_shard_of_an_id_is_pinned_across_versions_and_machines() -> None:
    # sha256 of the id, first 8 bytes big-endian, modulo N: never Python's salted hash().
    # Pinned: a change here would make shards of two llmopt versions overlap.
    assert [shard_of(i, 4) for i in ("q1", "q2", "q3", "c000", "0", "")] == [3, 4, 4, 1, 1, 1]
    import hashlib

    for case_id in ("q1", "é", "\ud800", "a" * 300):
        digest = hashlib.sha256(case_id.encode("utf-8", "surrogatepass")).digest()
        assert shard_of(case_id, 7) == int.from_bytes(digest[:8], "big") % 7 + 1
    assert shard_of("anything", 1) == 1


def test_shards_split_every_case_once_and_evenly() -> None:
    ids = [f"case-{i}" for i in range(4000)]
    counts = Counter(shard_of(i, 4) for i in ids)
    assert set(counts) == {1, 2, 3, 4}
    assert all(900 < c < 1100 for c in counts.values()), counts
    cases = [Case(id=i) for i in ids]
    parts = [Shard(k, 4).select(cases) for k in range(1, 5)]
    assert sorted(c.id for part in parts for c in part) == sorted(ids)
    assert parts[0] == [c for c in cases if Shard(1, 4).holds(c.id)]  # in the dataset's order


@pytest.mark.parametrize("text, k, n", [("1/4", 1, 4), ("4/4", 4, 4), (" 2 / 3 ", 2, 3), ("1/1", 1, 1)])
def test_k_of_n_parses(text: str, k: int, n: int) -> None:
    assert parse_shard(text) == Shard(k, n)
    assert str(Shard(k, n)) == f"{k}/{n}" and Shard(k, n).to_json() == {"k": k, "n": n}


@pytest.mark.parametrize(
    "text, message",
    [
        ("0/4", "K counts from 1 to N (4); shards are 1/4 ... 4/4"),
        ("5/4", "K counts from 1 to N (4)"),
        ("1/0", "N must be at least 1"),
        ("1", "is not K/N"),
        ("-1/4", "is not K/N"),
        ("a/b", "is not K/N"),
    ],
)
def test_a_malformed_shard_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ShardError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_shard(text)


def test_case_records_read_back_exactly() -> None:
    case = CaseResult(
        id="q1", input="What?", expected={"a": [1, 2]}, outputs=("x", "y"), latencies_s=(0.123456789, 0.2),
        scores={"exact_match": 0.5}, cached=1, retrieved=({"id": "d#0", "doc_id": "d", "score": 0.5},),
        relevant=("d",), usage=Usage(3, 4, 0.001, 1, 2, 0.002), served={"model": "m"},
        judges={"judge": {"verdict": "yes", "score": 1.0, "reason": "ok"}}, recipe={"name": "qa", "version": 2},
        prompt_hash="sha256:abc", consistency=0.5, cluster="g1", position=7,
    )
    assert case_from_json(case.to_json()) == case
    failed = CaseResult(id="q2", error="boom", scores={})
    assert case_from_json(failed.to_json()) == failed


def test_an_older_record_without_each_latency_repeats_the_mean() -> None:
    record = CaseResult(id="q", outputs=("a", "b"), latencies_s=(1.0, 3.0)).to_json()
    del record["latencies_s"]
    assert case_from_json(record).latencies_s == (2.0, 2.0)


def test_variant_records_read_back_with_their_metrics() -> None:
    variant = VariantResult(
        scenario="s", variant="v", cases=(CaseResult(id="q", outputs=("a",), latencies_s=(0.1,), scores={"m": 1.0}),),
        metrics={"m": MetricValue(1.0, 1, (0.2, 1.0), 0.0, "wilson", None, True)}, usage=Usage(calls=1),
        identity={"model": "x"}, duration_s=1.5, judge_usage=Usage(calls=2), identity_hash="sha256:1",
        retrieval_usage=Usage(calls=3),
    )
    assert variant_from_json("s", "v", variant.to_json()) == variant


def test_a_record_with_a_lone_surrogate_still_shows_its_escape() -> None:
    record = CaseResult(id="x", input="a\ud800", outputs=("b",), scores={"m": 1.0}, served={"k": ["\udfff"]}).to_json()
    assert record["input"] == "a\\ud800" and record["served"] == {"k": ["\\udfff"]}
    plain = CaseResult(id="x", input="a", outputs=("b",)).to_json()
    assert plain["input"] == "a" and plain["output"] == "b"

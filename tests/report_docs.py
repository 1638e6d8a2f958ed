"""Results documents for the report tests: one as this version writes it, one with the
fields later statistics add (se, p-values, identity hash, flaky cases), one minimal."""

from __future__ import annotations

import copy
from typing import Any


def _case(cid: str, output: str, score: float, *, error: str | None = None, **extra: Any) -> dict[str, Any]:
    case = {
        "id": cid, "input": f"question {cid} <b>bold</b>", "expected": "yes", "output": output,
        "scores": {} if error else {"contains": score, "latency_p95": 0.25},
        "error": error, "latency_s": 0.25, "cached": 0,
        "usage": {"input_tokens": 3, "output_tokens": 2, "cost_usd": 0.001, "cache_hits": 0, "calls": 1,
                  "cached_cost_usd": 0.0},
    }
    return case | extra


def _variant(cases: list[dict[str, Any]], value: float, ci: list[float], model: str) -> dict[str, Any]:
    return {
        "n": len(cases), "errors": sum(1 for c in cases if c["error"]),
        "metrics": {"contains": {"value": value, "n": len(cases), "ci": ci, "higher_is_better": True},
                    "latency_p95": {"value": 0.25, "n": len(cases), "ci": [0.2, 0.3], "higher_is_better": False}},
        "usage": {"input_tokens": 30, "output_tokens": 20, "cost_usd": 0.004, "cache_hits": 1, "calls": 4,
                  "cached_cost_usd": 0.001},
        "identity": {"provider": "echo", "model": model, "params": {}, "retrieval": None},
        "duration_s": 0.5,
        "cases": cases,
    }


def current_doc() -> dict[str, Any]:
    """A two-variant scenario with a failed delta, a passed threshold and a case error."""
    base = [_case("q1", "no", 0.0), _case("q2", "yes", 1.0), _case("q3", "<script>alert(1)</script>", 0.0)]
    rag = [
        _case("q1", "yes", 1.0, retrieved=[{"id": "a.md#0", "doc_id": "a.md", "score": 0.91}], relevant=["a.md"]),
        _case("q2", "yes", 1.0),
        _case("q3", "", 0.0, error="provider timed out after 30 s"),
    ]
    rag[2]["output"] = None
    return {"llmopt": 1, "scenarios": [{
        "scenario": "help<desk>", "spec": "specs/helpdesk.yaml",
        "variants": {"baseline": _variant(base, 1 / 3, [0.0, 1.0], "m-base"), "rag": _variant(rag, 1.0, [1.0, 1.0], "m-rag")},
        "assertions": [
            {"id": "specs/helpdesk.yaml::help<desk>::rag::contains>=baseline+0.9", "variant": "rag",
             "metric": "contains", "outcome": "failed", "observed": 1.0, "expected": ">= baseline + 0.9",
             "delta": 0.5, "vs": "baseline", "message": "contains: rag - baseline = +0.500 <oops>"},
            {"id": "specs/helpdesk.yaml::help<desk>::rag::contains>=0.5", "variant": "rag", "metric": "contains",
             "outcome": "passed", "observed": 1.0, "expected": ">= 0.5", "delta": None, "vs": None, "message": ""},
        ],
    }]}


def extended_doc() -> dict[str, Any]:
    """:func:`current_doc` with every field the results contract may add."""
    doc = copy.deepcopy(current_doc())
    entry = doc["scenarios"][0]
    for name, variant in entry["variants"].items():
        variant["metrics"]["contains"] |= {"se": 0.12, "method": "wilson"}
        variant["identity_hash"] = f"sha256:{name}0123456789abcdef"
        variant["identity"]["dataset_hash"] = "sha256:da7a5e7"
        variant["identity"]["recipe"] = {"name": "support", "version": 2, "system": "Be <brief>.",
                                         "template": "{{ question }}", "examples": [], "fields": {}}
        variant["judge_usage"] = {"cost_usd": 0.02, "calls": 3}
        for case in variant["cases"]:
            case |= {"recipe": {"name": "support", "version": 2}, "consistency": 0.8,
                     "judges": {"contains": {"verdict": "pass", "score": 1.0, "reason": "cites <the> policy"}}}
    entry["variants"]["rag"]["flaky"] = ["q2"]
    entry["assertions"][0] |= {"kind": "delta", "ci": [-0.1, 0.9], "confidence": 0.95, "test": "mcnemar-exact",
                               "p_value": 0.0312, "p_adjusted": 0.0624, "n": 2, "mde": 0.7, "underpowered": True,
                               "needed_n": 40}
    entry["assertions"][1] |= {"kind": "threshold", "ci": [0.6, 1.0], "p_value": None}
    doc |= {"usage": {"cost_usd": 0.008, "calls": 8, "cache_hits": 2}, "started": "2026-11-26T16:00:00Z",
            "duration_s": 1.5}
    return doc


def empty_doc() -> dict[str, Any]:
    return {"llmopt": 1, "scenarios": []}


def without_directions(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as written before metrics said which way is better (no ``higher_is_better``)."""
    old = copy.deepcopy(doc)
    for entry in old["scenarios"]:
        for variant in entry["variants"].values():
            for metric in variant["metrics"].values():
                metric.pop("higher_is_better", None)
    return old

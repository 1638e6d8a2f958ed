"""``llmopt merge`` of 4 shards of a 100,000-case run (2 variants, a threshold, a
confident delta in a Holm family, a non-inferiority gate), against the issue's target
of 10 s. Prints the time of each part: reading and checking the shards, rebuilding the
variants and gating, and writing the merged results JSON; and the peak memory.

    python bench/merge.py [CASES]
"""

from __future__ import annotations

import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llmopt.dataset._shard import shard_of
from llmopt.engine.results import CaseResult, Usage
from llmopt.merge._fingerprint import llmopt_version, spec_digest

SHARDS = 4
TARGET_S = 10.0
SPEC = """\
llmopt: 1
scenario: big
correction: holm
task:
  cases: [{id: x, question: q, answer: q}]
  id: id
  expected: answer
recipe: {template: "{{ question }}"}
model: {provider: echo}
variants:
  baseline: {}
  tuned: {}
assertions:
  - {metric: exact_match, variant: tuned, min: 0.5, confidence: 0.95}
  - {metric: exact_match, variant: tuned, vs: baseline, min_delta: 0.01, confidence: 0.95}
  - {metric: exact_match, variant: baseline, vs: tuned, max_drop: 0.05, confidence: 0.95}
"""
ITEMS = ("tuned::exact_match>=0.5", "tuned::exact_match>=baseline+0.01", "baseline::exact_match>=tuned-0.05")


def _variant(ids: list[str], scores: list[float], k: int) -> dict[str, Any]:
    cases = [
        CaseResult(
            id=i, input=f"question {i}", expected="q", outputs=("q",), latencies_s=(0.05,),
            scores={"exact_match": scores[p]}, usage=Usage(calls=1), position=p,
        ).to_json()
        for p, i in enumerate(ids)
        if shard_of(i, SHARDS) == k
    ]
    return {"n": len(cases), "errors": 0, "metrics": {}, "usage": {}, "identity": {"dataset": "x"},
            "identity_hash": "sha256:1", "cases": cases}


def _shard(root: Path, k: int, ids: list[str], scores: dict[str, list[float]]) -> Path:
    outcomes = [{"id": f"specs/big.yaml::big::{item}", "variant": item.split("::")[0], "outcome": "skipped",
                 "message": "gated after merge"} for item in ITEMS]
    entry = {"scenario": "big", "spec": "specs/big.yaml", "assertions": outcomes,
             "variants": {name: _variant(ids, values, k) for name, values in scores.items()}}
    entry["fingerprint"] = {"llmopt": llmopt_version(), "spec": spec_digest(root / "specs" / "big.yaml"),
                            "assertions": sorted(o["id"] for o in outcomes), "variants": dict.fromkeys(scores, "sha256:1")}
    path = root / f"shard-{k}.json"
    path.write_text(json.dumps({"llmopt": 1, "shard": {"k": k, "n": SHARDS}, "scenarios": [entry]}), encoding="utf-8")
    return path


def main(cases: int) -> None:
    from llmopt.merge import merge_shards
    from llmopt.merge._cli import _collector_paused  # as llmopt merge runs it

    root = Path(tempfile.mkdtemp(prefix="llmopt-merge-bench-")).resolve()
    (root / "specs").mkdir()
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (root / "specs" / "big.yaml").write_text(SPEC, encoding="utf-8")
    rng = random.Random(0)
    ids = [f"c{i:06d}" for i in range(cases)]
    scores = {name: [float(rng.random() < p) for _ in ids] for name, p in (("baseline", 0.6), ("tuned", 0.7))}
    paths = [_shard(root, k, ids, scores) for k in range(1, SHARDS + 1)]
    started = time.perf_counter()
    with _collector_paused():
        merged = merge_shards(paths, root)
    checked = time.perf_counter()
    merged.store.write(root / "merged.json", merged.doc())
    written = time.perf_counter()
    total = written - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{SHARDS} shards x {cases} cases x 2 variants: outcomes {sorted(merged.outcomes())}")
    print(f"read, check, rebuild and gate {checked - started:6.2f} s")
    print(f"write the merged results JSON {written - checked:6.2f} s")
    print(f"merge in all                  {total:6.2f} s = {total / TARGET_S:.2f} x the target {TARGET_S:.0f} s")
    print(f"peak RSS                      {peak:6.0f} MB (the shard files are built in this process too)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)

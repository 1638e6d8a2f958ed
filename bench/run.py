"""Benchmarks of llmopt's targets; prints each measurement as a ratio to its target.

    python bench/run.py            # all targets (the cold main job takes a minute or two)
    python bench/run.py --quick    # skip the cold main job

A ratio at or below 1.00 meets the target. Timings are medians of repeated runs, taken
in fresh processes, because the machines these run on are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
llmopt: 1
scenario: big
task: {dataset: cases.jsonl, id: id, expected: answer}
recipe: {template: "{{ question }}"}
model: {provider: echo}
assertions:
  - {metric: exact_match, min: 0.0}
"""


def _timed(args: Sequence[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=False, capture_output=True)
    return time.perf_counter() - started


def _median(args: Sequence[str], cwd: Path, runs: int) -> float:
    return statistics.median(_timed(args, cwd) for _ in range(runs))


def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def _report(name: str, measured: float, target: float, unit: str = "s") -> None:
    ratio = measured / target
    verdict = "ok" if ratio <= 1.0 else "MISSED"
    print(f"{name:<46} {measured:8.3f} {unit} / target {target:g} {unit} = {ratio:5.2f}  {verdict}")


def bench_collection(tmp: Path, runs: int) -> None:
    """Collecting a spec with a 10,000-case JSONL costs < 1 s over an empty folder."""
    empty, big = tmp / "empty", tmp / "big"
    empty.mkdir()
    big.mkdir()
    (big / "big.yaml").write_text(SPEC, encoding="utf-8")
    with (big / "cases.jsonl").open("w", encoding="utf-8") as out:
        for i in range(10_000):
            out.write(json.dumps({"id": f"c{i}", "question": f"question {i} " * 8, "answer": str(i)}) + "\n")
    base = _median(_pytest("--collect-only", "-q", str(empty)), tmp, runs)
    spec = _median(_pytest("--collect-only", "-q", str(big)), tmp, runs)
    _report("collect 10,000-case spec over empty folder", spec - base, 1.0)


def bench_startup(tmp: Path, runs: int) -> None:
    """Loading the plugin adds < 150 ms to pytest's start-up."""
    (tmp / "nothing").mkdir(exist_ok=True)
    without = _median(_pytest("-p", "no:llmopt", "--collect-only", "-q", "nothing"), tmp, runs)
    with_plugin = _median(_pytest("--collect-only", "-q", "nothing"), tmp, runs)
    _report("plugin start-up overhead", (with_plugin - without) * 1000, 150.0, "ms")


def bench_main_job(tmp: Path, cold: bool, runs: int) -> None:
    """`pytest specs/`: < 3 min cold, < 5 s warm (from the response cache)."""
    cache = tmp / "cache"
    args = _pytest("specs/", "-q", "--llmopt-cache-dir", str(cache))
    if cold:
        _report("main job, cold cache", _timed(args, ROOT), 180.0)
    else:
        _timed(args, ROOT)  # fill the cache
    _report("main job, warm cache", _median(args, ROOT, runs), 5.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the cold main job")
    parser.add_argument("--runs", type=int, default=5, help="repetitions per timing (median)")
    options = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmopt-bench-"))
    try:
        bench_collection(tmp, options.runs)
        bench_startup(tmp, options.runs)
        bench_main_job(tmp, cold=not options.quick, runs=max(1, options.runs // 2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

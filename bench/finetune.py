"""Fine-tuning benchmarks: the leakage check between 5,000 training and 2,000
evaluation inputs, and rendering a 5,000-case training set.

    python bench/finetune.py            # median of 3 runs
    python bench/finetune.py --runs 1

Prints each measurement as a ratio to its target, like ``bench/run.py``: at or below
1.00 meets it. The texts are generated from a seeded word list (questions of 6 to 20
words), with two planted leaks that must be found. scikit-learn is imported before
timing starts.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from llmopt.finetune import find_leaks, training_set
from llmopt.spec import load_scenario

TRAIN, EVAL = 5_000, 2_000
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "da", "gu", "ri", "zo", "fa")


def _report(name: str, measured: float, target: float) -> None:
    ratio = measured / target
    verdict = "ok" if ratio <= 1.0 else "MISSED"
    print(f"{name:<46} {measured:8.3f} s / target {target:g} s = {ratio:5.2f}  {verdict}")


def _questions(count: int, rng: random.Random) -> list[str]:
    words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(4_000)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(6, 20))) + "?" for _ in range(count)]


def _median(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_leaks(runs: int) -> None:
    texts = _questions(TRAIN + EVAL, random.Random(7))
    train = [(f"t{i}", t) for i, t in enumerate(texts[:TRAIN])]
    evaluation = [(f"e{i}", t) for i, t in enumerate(texts[TRAIN:])]
    evaluation[3] = ("e3", train[10][1].upper())
    long_one = max(range(100), key=lambda i: len(train[i][1]))
    typo = train[long_one][1]
    evaluation[4] = ("e4", typo[:10] + typo[11:])  # one letter dropped
    found = {(leak.train_id, leak.eval_id) for leak in find_leaks(train, evaluation)}
    assert {("t10", "e3"), (f"t{long_one}", "e4")} <= found, found
    _report(f"find_leaks {TRAIN} x {EVAL} inputs", _median(runs, lambda: find_leaks(train, evaluation)), 5.0)


def bench_training_set(runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        texts = _questions(TRAIN + 100, random.Random(8))
        lines = [json.dumps({"id": f"c{i}", "question": q, "answer": q.split()[0]}) for i, q in enumerate(texts)]
        (root / "train.jsonl").write_text("\n".join(lines[:TRAIN]) + "\n")
        (root / "eval.jsonl").write_text("\n".join(lines[TRAIN:]) + "\n")
        spec = root / "spec.yaml"
        spec.write_text(
            "llmopt: 1\nscenario: bench\ntask: {dataset: eval.jsonl, train: train.jsonl, id: id, expected: answer}\n"
            'recipe: {system: Be brief., template: "Question: {{ question }}"}\nmodel: {provider: echo}\n'
        )
        scenario = load_scenario(spec)
        _report(f"training_set of {TRAIN} cases", _median(runs, lambda: training_set(scenario, "default")), 2.0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    import sklearn.feature_extraction.text  # noqa: F401  (imported before timing)

    bench_leaks(args.runs)
    bench_training_set(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

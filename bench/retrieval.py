"""Retrieval benchmarks: indexing a 10,000-document corpus and answering 1,000 queries.

    python bench/retrieval.py              # tfidf and bm25, median of 3 runs
    python bench/retrieval.py --runs 1

Prints each measurement as a ratio to its target, like ``bench/run.py``: at or below
1.00 meets it. The corpus (about 5 MB of text in 10,000 files) is generated from a
seeded word list, so every run indexes the same documents. "index" is a fresh
session building the index (reading and hashing the source, chunking, fitting,
writing the disk cache); "load" is a fresh session finding it in the disk cache.
scikit-learn is imported before timing starts.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from llmopt.retrieval import RetrievalSession, builtin_retriever_types
from llmopt.spec._model import RetrievalSpec

DOCUMENTS = 10_000
QUERIES = 1_000
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "da", "gu", "ri", "zo", "fa")


def _report(name: str, measured: float, target: float, unit: str = "s") -> None:
    ratio = measured / target
    verdict = "ok" if ratio <= 1.0 else "MISSED"
    print(f"{name:<46} {measured:8.3f} {unit} / target {target:g} {unit} = {ratio:5.2f}  {verdict}")


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def write_corpus(folder: Path, seed: int = 2024) -> tuple[int, list[str]]:
    """10,000 text files of Zipf-distributed words (about 5 MB); returns the size and
    1,000 queries of three to six words drawn from the documents."""
    rng = random.Random(seed)
    words = _vocabulary(rng, 20_000)
    weights = list(itertools.accumulate(1.0 / rank for rank in range(1, len(words) + 1)))
    total, queries = 0, []
    for number in range(DOCUMENTS):
        text = " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(50, 70)))
        path = folder / f"part{number // 100:03d}" / f"doc{number:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        total += len(text.encode("utf-8"))
        if number % (DOCUMENTS // QUERIES) == 0:
            start = rng.randrange(0, 40)
            queries.append(" ".join(text.split()[start : start + rng.randint(3, 6)]))
    return total, queries


def _median(measure: Callable[[], float], runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


def bench_retriever(name: str, base: Path, queries: list[str], runs: int) -> None:
    retrievers = {r.name: r for r in builtin_retriever_types()}
    spec = RetrievalSpec(source="corpus", retriever=name, top_k=3)

    def index() -> float:
        shutil.rmtree(base / "cache", ignore_errors=True)
        started = time.perf_counter()
        RetrievalSession(retrievers, cache_dir=base / "cache").index_for(spec, base)
        return time.perf_counter() - started

    def load() -> float:
        session = RetrievalSession(retrievers, cache_dir=base / "cache")
        started = time.perf_counter()
        session.index_for(spec, base)
        assert session.loads == 1 and session.builds == 0
        return time.perf_counter() - started

    def search() -> float:
        found = RetrievalSession(retrievers, cache_dir=base / "cache").index_for(spec, base)
        started = time.perf_counter()
        for query in queries:
            found.search(query, spec.top_k)
        return time.perf_counter() - started

    _report(f"{name}: index {DOCUMENTS:,} documents", _median(index, runs), 10.0)
    _report(f"{name}: load the index from the disk cache", _median(load, runs), 2.0)
    _report(f"{name}: {len(queries):,} queries", _median(search, runs), 5.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per timing (median)")
    parser.add_argument(
        "--retrievers", nargs="+", default=["tfidf", "bm25"], help="also: hybrid"
    )
    options = parser.parse_args()
    from sklearn.feature_extraction import text

    del text  # imported here so that no timing includes the import

    tmp = Path(tempfile.mkdtemp(prefix="llmopt-bench-retrieval-"))
    try:
        size, queries = write_corpus(tmp / "corpus")
        print(f"corpus: {DOCUMENTS:,} documents, {size / 1e6:.1f} MB; {len(queries):,} queries")
        for name in options.retrievers:
            bench_retriever(name, tmp, queries, max(1, options.runs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

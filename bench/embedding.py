"""Embedding retriever benchmark: the retrieval benchmark's 10,000-document corpus
embedded through the real OpenAI SDK against the loopback fake (``/v1/embeddings``).

    python bench/embedding.py              # median of 3 runs
    python bench/embedding.py --runs 1

Prints ratios to targets like ``bench/run.py`` (at or below 1.00 meets it). "index"
embeds every chunk in batches of 64 (concurrency 8) and writes the disk cache;
"load" finds the vectors in the disk cache; "queries" embeds 1,000 queries (cold,
concurrently in one event loop) and "cached queries" finds them in the response
cache. The fake's own work (hashing words into vectors) is part of the timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval import DOCUMENTS, _report, write_corpus  # noqa: E402

from llmopt.engine.cache import ResponseCache  # noqa: E402
from llmopt.retrieval import RetrievalSession, builtin_retriever_types  # noqa: E402
from llmopt.spec._model import RetrievalSpec  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402


def _median(measure: Callable[[], float], runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


async def _search_all(index: Any, queries: list[str]) -> None:
    await asyncio.gather(*(index.asearch(query, 3) for query in queries))
    await index.aclose()


def bench(base: Path, queries: list[str], base_url: str, runs: int) -> None:
    retrievers = {r.name: r for r in builtin_retriever_types()}
    embedding = {"provider": "openai", "id": "bench-embed", "base_url": base_url, "batch_size": 64}
    spec = RetrievalSpec(source="corpus", retriever="embedding", top_k=3, options={"embedding": embedding})

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

    def search(warm: bool) -> Callable[[], float]:
        def timed() -> float:
            if not warm:
                shutil.rmtree(base / "responses", ignore_errors=True)
            cache = ResponseCache(base / "responses")
            found = RetrievalSession(retrievers, cache_dir=base / "cache", response_cache=cache).index_for(spec, base)
            if warm:
                asyncio.run(_search_all(found, queries))
            started = time.perf_counter()
            asyncio.run(_search_all(found, queries))
            return time.perf_counter() - started

        return timed

    _report(f"embedding: index {DOCUMENTS:,} documents", _median(index, runs), 10.0)
    _report("embedding: load the vectors from the disk cache", _median(load, runs), 2.0)
    _report(f"embedding: {len(queries):,} queries (embedded)", _median(search(False), runs), 10.0)
    _report(f"embedding: {len(queries):,} queries (response cache)", _median(search(True), runs), 2.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per timing (median)")
    options = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    tmp = Path(tempfile.mkdtemp(prefix="llmopt-bench-embedding-"))
    try:
        size, queries = write_corpus(tmp / "corpus")
        print(f"corpus: {DOCUMENTS:,} documents, {size / 1e6:.1f} MB; {len(queries):,} queries")
        with FakeOpenAI() as fake:
            bench(tmp, queries, fake.base_url, max(1, options.runs))
            print(f"requests to the fake: {fake.embedding_requests:,}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

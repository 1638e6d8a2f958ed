"""The ``embedding`` retriever through the real OpenAI SDK against the loopback fake
(``/v1/embeddings``), its caches, its errors, the hybrid fusing it, and the offline
local backend."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from fakes.openai_server import FakeOpenAI, fake_embedding

from llmopt.engine.cache import ResponseCache
from llmopt.engine.calls import ModelCalls
from llmopt.engine.runner import Runner
from llmopt.errors import ProviderAuthError, ProviderError
from llmopt.registry import create_registry
from llmopt.retrieval import HybridRetriever, RetrievalSession, builtin_retriever_types
from llmopt.retrieval._embedding import EmbeddingRetriever
from llmopt.spec import load_scenario
from llmopt.spec._model import RetrievalSpec

KEY = "sk-test-EMBEDKEY0123456789abcdef"
CORPUS = {
    "refunds.md": "# Refunds\n\nYou can ask for a refund within 30 days of purchase.",
    "shipping.md": "# Shipping\n\nOrders ship within two business days.",
    "passwords.md": "# Passwords\n\nTo reset your password open the login page.",
    "warranty.md": "# Warranty\n\nEvery device has a two-year warranty.",
    "hours.txt": "Our support office is open Monday to Friday.",
}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for name, text in CORPUS.items():
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    return tmp_path


def spec(fake_openai: FakeOpenAI | None, top_k: int = 2, **embedding: Any) -> RetrievalSpec:
    settings = {"provider": "openai", "id": "embed-small", "max_retries": 0, "timeout": 5, **embedding}
    if fake_openai is not None:
        settings.setdefault("base_url", fake_openai.base_url)
    return RetrievalSpec(source="docs", retriever="embedding", top_k=top_k, options={"embedding": settings})


def session(tmp_path: Path, cache: ResponseCache | None = None) -> RetrievalSession:
    retrievers = {r.name: r for r in builtin_retriever_types()}
    return RetrievalSession(retrievers, cache_dir=tmp_path / "indexes", calls=ModelCalls(cache))


# -- checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("embedding", "expected"),
    [
        (None, "retrieval.embedding is required"),
        ("openai", "retrieval.embedding must be a mapping"),
        ({"provider": "cohere"}, "retrieval.embedding.provider must be one of openai, local"),
        ({"provider": "openai", "model": "x"}, "retrieval.embedding: unknown key 'model'"),
        ({"provider": "openai", "batch_size": 0}, "retrieval.embedding.batch_size must be a positive integer"),
        ({"provider": "openai", "base_url": "ftp://x"}, "retrieval.embedding.base_url must start with http"),
        ({"provider": "local", "id": "models/missing.gguf"}, "retrieval.embedding.id: no model file 'models/missing.gguf'"),
    ],
)
def test_bad_embedding_settings(embedding: Any, expected: str, tmp_path: Path) -> None:
    options = {} if embedding is None else {"embedding": embedding}
    found = EmbeddingRetriever().check(RetrievalSpec("docs", "embedding", 3, options), tmp_path)
    assert any(expected in problem for problem in found), found


# -- retrieval through the SDK ----------------------------------------------------------------


def test_ranks_by_cosine_of_provider_vectors_in_batches(corpus: Path, fake_openai: FakeOpenAI) -> None:
    index = session(corpus).index_for(spec(fake_openai, batch_size=2), corpus)
    assert fake_openai.embedding_requests == 3  # 5 chunks in batches of 2
    hits = index.search("refund purchase days", 2)
    assert hits[0].chunk.doc_id == "refunds.md"
    query = fake_embedding("refund purchase days")
    document = fake_embedding("Refunds\nYou can ask for a refund within 30 days of purchase.")
    assert hits[0].score == pytest.approx(sum(a * b for a, b in zip(query, document, strict=True)), abs=1e-5)
    assert fake_openai.last_path == "/v1/embeddings" and fake_openai.last_body["model"] == "embed-small"
    assert fake_openai.last_headers["authorization"] == f"Bearer {KEY}"


def test_document_vectors_are_kept_on_disk_and_checked(corpus: Path, fake_openai: FakeOpenAI) -> None:
    session(corpus).index_for(spec(fake_openai), corpus)
    built = fake_openai.embedding_requests
    again = session(corpus)
    index = again.index_for(spec(fake_openai), corpus)
    assert again.loads == 1 and again.builds == 0 and fake_openai.embedding_requests == built
    assert index.search("password login", 1)[0].chunk.doc_id == "passwords.md"
    other = session(corpus)
    other.index_for(spec(fake_openai, id="embed-large"), corpus)  # another model: built anew
    assert other.builds == 1
    (corpus / "docs" / "hours.txt").write_text("Open on weekends too.", encoding="utf-8")
    changed = session(corpus)
    changed.index_for(spec(fake_openai), corpus)
    assert changed.builds == 1


def test_query_vectors_are_cached_like_responses_without_keys(corpus: Path, fake_openai: FakeOpenAI) -> None:
    cache = ResponseCache(corpus / "cache")
    index = session(corpus, cache).index_for(spec(fake_openai), corpus)
    first = index.search("warranty device", 1)
    calls = fake_openai.embedding_requests
    index2 = session(corpus, ResponseCache(corpus / "cache")).index_for(spec(fake_openai), corpus)
    assert index2.search("warranty device", 1) == first
    assert fake_openai.embedding_requests == calls
    assert KEY.encode() not in (corpus / "cache" / "responses.sqlite3").read_bytes()


def test_auth_failure_maps_to_provider_auth_error_without_the_key(corpus: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.always(FakeOpenAI.unauthorized())
    with pytest.raises(ProviderAuthError) as info:
        session(corpus).index_for(spec(fake_openai), corpus)
    assert "authentication failed (401)" in str(info.value) and KEY not in str(info.value)


def test_missing_key_fails_closed(corpus: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ProviderAuthError, match="OPENAI_API_KEY"):
        session(corpus).index_for(spec(fake_openai), corpus)
    assert fake_openai.requests == 0


def test_server_errors_and_malformed_responses_are_provider_errors(corpus: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.server_error(500))
    with pytest.raises(ProviderError, match="server error"):
        session(corpus).index_for(spec(fake_openai), corpus)
    fake_openai.script(_empty())
    with pytest.raises(ProviderError, match="(?i)no embedding data|malformed embeddings"):
        session(corpus).index_for(spec(fake_openai), corpus)


def _empty() -> Any:
    from fakes.openai_server import Scripted

    return Scripted(body={"object": "list", "data": [], "model": "m", "usage": {"prompt_tokens": 0, "total_tokens": 0}})


# -- the hybrid fuses any registered retriever --------------------------------------------------


def test_hybrid_fuses_embedding_and_bm25(corpus: Path, fake_openai: FakeOpenAI) -> None:
    members = ["bm25", {"retriever": "embedding", "embedding": dict(spec(fake_openai).options["embedding"])}]
    hybrid = RetrievalSpec("docs", "hybrid", 2, {"retrievers": members})
    registry = create_registry(entry_points=False)
    assert registry.retrievers["hybrid"].check(hybrid, corpus) == []
    first = RetrievalSession(registry.retrievers, cache_dir=corpus / "indexes", calls=ModelCalls())
    hits = first.index_for(hybrid, corpus).search("refund purchase", 2)
    assert hits[0].chunk.doc_id == "refunds.md"
    again = RetrievalSession(registry.retrievers, cache_dir=corpus / "indexes", calls=ModelCalls())
    again.index_for(hybrid, corpus)
    assert again.loads == 1


class _Shortest:
    """A plugin's retriever: the shortest chunks first."""

    name = "shortest"

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        return []

    def build(self, chunks: Any, spec: RetrievalSpec, base_dir: Path) -> Any:
        from llmopt.retrieval import Hit

        class _Index:
            def search(self, query: str, top_k: int) -> list[Hit]:
                ranked = sorted(chunks, key=lambda c: len(c.text))[:top_k]
                return [Hit(chunk=c, score=-len(c.text), rank=n) for n, c in enumerate(ranked, start=1)]

        return _Index()


def test_hybrid_fuses_a_plugin_retriever_once_bound(corpus: Path) -> None:
    hybrid = HybridRetriever({})
    fused = RetrievalSpec("docs", "hybrid", 1, {"retrievers": ["shortest"]})
    assert "unknown retriever 'shortest'" in " ".join(hybrid.check(fused, corpus))
    hybrid.bind({"shortest": _Shortest(), "hybrid": hybrid})
    assert hybrid.check(fused, corpus) == []
    retrievers = {"hybrid": hybrid, "shortest": _Shortest()}
    hits = RetrievalSession(retrievers).index_for(fused, corpus).search("anything", 1)
    assert hits[0].chunk.doc_id == "hours.txt"


# -- through the runner --------------------------------------------------------------------------

SPEC = """\
llmopt: 1
scenario: embedded
task:
  id: id
  input: question
  expected: answer
  cases:
    - {id: refund, question: "refund purchase", answer: "30 days"}
    - {id: login, question: "reset password", answer: "login page"}
recipe:
  template: "{{ context }} | {{ question }}"
retrieval:
  source: docs
  retriever: embedding
  top_k: 1
  embedding: {provider: openai, id: embed-small, base_url: BASE, max_retries: 0}
model:
  provider: echo
assertions:
  - {metric: contains, min: 1.0}
"""


def test_runner_retrieves_with_embeddings_and_caches_queries(corpus: Path, fake_openai: FakeOpenAI) -> None:
    path = corpus / "spec.yaml"
    path.write_text(SPEC.replace("BASE", fake_openai.base_url), encoding="utf-8")
    for run in range(2):
        registry = create_registry(entry_points=False)
        result = Runner(registry, ResponseCache(corpus / "cache")).evaluate(load_scenario(path, registry), "default")
        assert result.errors == 0 and result.metrics["contains"].value == 1.0
        assert [c.retrieved_documents for c in result.cases] == [("refunds.md",), ("passwords.md",)]
        if run == 0:
            calls = fake_openai.embedding_requests
    assert fake_openai.embedding_requests == calls  # second run: index from disk, queries from the cache


# -- offline ----------------------------------------------------------------------------------------


def test_local_embeddings_run_offline(corpus: Path) -> None:
    pytest.importorskip("llama_cpp")
    local = RetrievalSpec("docs", "embedding", 5, {"embedding": {"provider": "local"}})
    first = session(corpus)
    hits = first.index_for(local, corpus).search("How do I reset my password?", 5)
    assert len(hits) == 5 and all(math.isfinite(h.score) for h in hits)
    assert {h.chunk.doc_id for h in hits} == set(CORPUS)
    again = session(corpus)
    again.index_for(local, corpus)
    assert again.loads == 1


def test_bad_embedding_settings_are_spec_errors_listed_at_once(corpus: Path) -> None:
    from llmopt.errors import SpecError

    spec = SPEC.replace("{provider: openai, id: embed-small, base_url: BASE, max_retries: 0}", "{model: x, batch_size: 0}")
    (corpus / "spec.yaml").write_text(spec, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_scenario(corpus / "spec.yaml", create_registry(entry_points=False))
    text = str(info.value)
    assert "2 problems" in text and "retrieval.embedding: unknown key 'model'" in text
    assert "retrieval.embedding.batch_size must be a positive integer, got 0" in text


# -- usage and budget -------------------------------------------------------------------------------


def _priced_spec(corpus: Path, fake_openai: FakeOpenAI, model: str, usd_per_million: float) -> Path:
    """The runner spec with its embedding model priced at ``usd_per_million`` input tokens."""
    priced = f"{{provider: openai, id: {model}, base_url: {fake_openai.base_url}, max_retries: 0, price: {{input: {usd_per_million}}}}}"
    path = corpus / "spec.yaml"
    path.write_text(SPEC.replace("{provider: openai, id: embed-small, base_url: BASE, max_retries: 0}", priced), encoding="utf-8")
    return path


def test_embedding_calls_are_counted_and_priced_apart_from_the_model(corpus: Path, fake_openai: FakeOpenAI) -> None:
    path = _priced_spec(corpus, fake_openai, "text-embedding-3-small", 1000)
    registry = create_registry(entry_points=False)
    first = Runner(registry, ResponseCache(corpus / "cache")).evaluate(load_scenario(path, registry), "default")
    usage = first.retrieval_usage
    assert usage is not None and usage.calls == fake_openai.embedding_requests == 3  # the chunks in one batch, two queries
    assert usage.input_tokens > 0 and usage.cost_usd == pytest.approx(usage.input_tokens * 1000 / 1e6)
    assert first.usage.cost_usd == 0.0  # the echo model under test costs nothing
    assert first.to_json()["retrieval_usage"]["calls"] == 3
    again = Runner(registry, ResponseCache(corpus / "cache")).evaluate(load_scenario(path, registry), "default")
    assert again.retrieval_usage is not None
    assert (again.retrieval_usage.calls, again.retrieval_usage.cache_hits) == (0, 2)  # index from disk, queries cached


def test_the_run_budget_stops_embedding_calls(corpus: Path, fake_openai: FakeOpenAI) -> None:
    from llmopt.engine.budget import Budget

    path = _priced_spec(corpus, fake_openai, "embed-small", 1_000_000)
    registry = create_registry(entry_points=False)
    budget = Budget(1.0)
    result = Runner(registry, ResponseCache(corpus / "cache"), budget=budget).evaluate(load_scenario(path, registry), "default")
    assert fake_openai.embedding_requests == 1  # the index was built; the budget was then used up
    assert result.errors == 2 and budget.exhausted
    assert all("embedding the query " in (c.error or "") and
               ": not called: the run's budget of $1.0000 is used up" in (c.error or "")
               for c in result.cases)
    assert budget.spent_usd == pytest.approx(result.retrieval_usage.cost_usd)


def test_an_embedding_price_needs_only_the_input(corpus: Path) -> None:
    from llmopt.provider.embedding import check_embedding

    assert check_embedding({"provider": "openai", "price": {"input": 0.02}}, corpus) == []
    assert check_embedding({"provider": "openai", "price": {"inptu": 0.02}}, corpus) == [
        "retrieval.embedding.price.input is required (USD per million tokens)",
        "unknown key retrieval.embedding.price.inptu (known: input, output, cached_input, batch_input, batch_output, "
        "batch_cached_input)",
    ]

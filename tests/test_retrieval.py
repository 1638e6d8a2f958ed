"""Tests of llmopt.retrieval: sources, chunking, retrievers, index reuse, context."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path
from typing import Any, Sequence

import pytest

from llmopt.errors import DatasetError
from llmopt.retrieval import (
    Chunk,
    Hit,
    HybridRetriever,
    Index,
    RetrievalError,
    RetrievalSession,
    builtin_retriever_types,
    check_source,
    format_context,
    load_chunks,
    template_variables,
)
from llmopt.spec._model import RetrievalSpec

BUILTINS = {retriever.name: retriever for retriever in builtin_retriever_types()}

CORPUS = {
    "refunds.md": "# Refunds\n\nYou can ask for a refund within 30 days of purchase. "
    "Refunds are paid back to the original card.",
    "shipping.md": "# Shipping\n\nOrders ship within two business days. "
    "Express delivery arrives the next day.",
    "passwords.md": "# Passwords\n\nTo reset your password, open the login page and click "
    "'forgot password'. A reset link is emailed to you.",
    "warranty.md": "# Warranty\n\nEvery device has a two-year warranty covering hardware faults.",
    "hours.txt": "Our support office is open Monday to Friday, 9am to 5pm.",
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def spec(
    source: str | None = "docs", retriever: str = "tfidf", top_k: int = 3, **options: Any
) -> RetrievalSpec:
    return RetrievalSpec(source=source, retriever=retriever, top_k=top_k, options=options)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for name, text in CORPUS.items():
        write(tmp_path / "docs" / name, text)
    return tmp_path


def build(base: Path, retrieval: RetrievalSpec) -> Index:
    retriever = BUILTINS[retrieval.retriever]
    assert retriever.check(retrieval, base) == []
    return retriever.build(load_chunks(retrieval, base), retrieval, base)


# --- sources -------------------------------------------------------------------------


def test_folder_reads_markdown_text_and_html_recursively(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "a.md", "# A\n\nalpha text")
    write(tmp_path / "docs" / "notes.txt", "plain notes")
    write(tmp_path / "docs" / "sub" / "page.html", "<p>from html</p>")
    write(tmp_path / "docs" / "sub" / "data.json", '{"ignored": true}')
    write(tmp_path / "docs" / ".hidden" / "secret.md", "hidden")
    write(tmp_path / "docs" / "rows.jsonl", '{"id": 1, "text": "not read from a folder"}')

    chunks = load_chunks(spec("docs"), tmp_path)

    assert [c.doc_id for c in chunks] == ["a.md", "notes.txt", "sub/page.html"]
    assert [c.text for c in chunks] == ["# A\nalpha text", "plain notes", "from html"]


def test_html_is_stripped_with_script_and_style_dropped(tmp_path: Path) -> None:
    html = (
        "<html><head><style>p {color: red}</style><script>var leak = 1;</script></head>"
        "<body><h2>Delivery  times</h2><p>Orders ship in <b>two</b> days.<br>Fish &amp; chips.</p>"
        "</body></html>"
    )
    write(tmp_path / "page.htm", html)

    [chunk] = load_chunks(spec("page.htm"), tmp_path)

    assert chunk.text == "## Delivery times\nOrders ship in two days.\nFish & chips."
    assert chunk.title == "Delivery times"
    assert "leak" not in chunk.text and "color" not in chunk.text


def test_jsonl_corpus_uses_row_ids_and_titles(tmp_path: Path) -> None:
    rows = [
        {"id": "kb-1", "text": "Refunds take five days.", "title": "Refunds", "lang": "en"},
        {"id": 2, "text": "Shipping is free."},
    ]
    write(tmp_path / "kb.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")

    chunks = load_chunks(spec("kb.jsonl"), tmp_path)

    assert [(c.id, c.doc_id, c.title, c.text) for c in chunks] == [
        ("kb-1#1", "kb-1", "Refunds", "Refunds take five days."),
        ("2#1", "2", None, "Shipping is free."),
    ]


def test_jsonl_bad_rows_are_all_reported_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "kb.jsonl",
        '{"id": "a", "text": "fine"}\n{"id": "b"}\nnot json\n'
        '["a list"]\n{"id": true, "text": "x"}\n',
    )

    with pytest.raises(DatasetError) as info:
        load_chunks(spec("kb.jsonl"), tmp_path)

    message = str(info.value)
    assert f"{path}:2: 'text' must be a string" in message
    assert f"{path}:3: invalid JSON" in message
    assert f"{path}:4: expected a JSON object" in message
    assert f"{path}:5: 'id' must be" in message
    assert f"{path}:1:" not in message


def test_duplicate_document_ids_are_an_error(tmp_path: Path) -> None:
    write(tmp_path / "kb.jsonl", '{"id": "x", "text": "one"}\n{"id": "x", "text": "two"}\n')

    with pytest.raises(DatasetError, match="duplicate document ids.*'?x"):
        load_chunks(spec("kb.jsonl"), tmp_path)


def test_glob_is_relative_to_the_spec_folder(tmp_path: Path) -> None:
    write(tmp_path / "kb" / "b.md", "bee")
    write(tmp_path / "kb" / "a.md", "ay")
    write(tmp_path / "kb" / "skip.txt", "not matched")
    write(tmp_path / "kb" / "deep" / "c.md", "sea")

    assert [c.doc_id for c in load_chunks(spec("kb/*.md"), tmp_path)] == ["kb/a.md", "kb/b.md"]
    deep = load_chunks(spec("kb/**/*.md"), tmp_path)
    assert [c.doc_id for c in deep] == ["kb/a.md", "kb/b.md", "kb/deep/c.md"]


def test_glob_without_matches_is_reported(tmp_path: Path) -> None:
    [problem] = check_source(spec("kb/*.md"), tmp_path)

    assert "'kb/*.md' matches no" in problem and str(tmp_path) in problem


def test_single_file_id_is_relative_to_the_spec_folder(tmp_path: Path) -> None:
    write(tmp_path / "kb" / "faq.md", "Questions and answers.")
    specs = tmp_path / "specs"
    specs.mkdir()

    [chunk] = load_chunks(spec("../kb/faq.md"), specs)

    assert chunk.id == "../kb/faq.md#1"


def test_missing_source_names_the_path_as_written_and_resolved(tmp_path: Path) -> None:
    [problem] = check_source(spec("../nowhere/"), tmp_path / "specs")

    assert "'../nowhere/'" in problem
    assert str(tmp_path / "nowhere") in problem
    with pytest.raises(DatasetError, match="not found"):
        load_chunks(spec("../nowhere/"), tmp_path / "specs")


def test_unsupported_single_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "manual.pdf", "%PDF")

    [problem] = check_source(spec("manual.pdf"), tmp_path)

    assert "not a supported document" in problem


def test_check_source_reads_no_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "docs" / "a.md", "text")
    write(tmp_path / "kb.jsonl", "not even json")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("check_source read a file")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(Path, "read_text", refuse)
    monkeypatch.setattr(Path, "open", refuse)

    assert check_source(spec("docs"), tmp_path) == []
    assert check_source(spec("kb.jsonl"), tmp_path) == []
    assert check_source(spec("*.jsonl"), tmp_path) == []


def test_empty_sources_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write(tmp_path / "blank" / "a.md", "  \n\n")

    with pytest.raises(DatasetError, match="has no documents"):
        load_chunks(spec("empty"), tmp_path)
    with pytest.raises(DatasetError, match="no text to retrieve"):
        load_chunks(spec("blank"), tmp_path)


def test_no_source_means_no_chunks(tmp_path: Path) -> None:
    assert check_source(spec(None), tmp_path) == []
    assert load_chunks(spec(None), tmp_path) == []
    assert "retrieval.source is required" in BUILTINS["tfidf"].check(spec(None), tmp_path)[0]


def test_invalid_utf8_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")

    with pytest.raises(DatasetError, match="bad.txt: not UTF-8"):
        load_chunks(spec("bad.txt"), tmp_path)


# --- ids and chunking ----------------------------------------------------------------


def long_section(sentences: int) -> str:
    return " ".join(f"Sentence number {i} talks about topic {i}." for i in range(sentences))


def test_chunk_ids_are_stable(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "b.md", "# One\n\nfirst\n\n# Two\n\n" + long_section(40))
    before = load_chunks(spec("docs", chunk={"size": 300, "overlap": 50}), tmp_path)
    write(tmp_path / "docs" / "a.md", "a new document sorted first")

    after = load_chunks(spec("docs", chunk={"size": 300, "overlap": 50}), tmp_path)

    assert [c.id for c in before] == [f"b.md#{n}" for n in range(1, len(before) + 1)]
    assert [c for c in after if c.doc_id == "b.md"] == before
    assert after[0].id == "a.md#1"


def test_markdown_sections_are_never_merged(tmp_path: Path) -> None:
    text = "Intro line.\n\n# Refunds\n\nRefund text.\n\n## Exceptions\n\nException text.\n"
    write(tmp_path / "faq.md", text)

    chunks = load_chunks(spec("faq.md"), tmp_path)

    assert [(c.title, c.text) for c in chunks] == [
        (None, "Intro line."),
        ("Refunds", "# Refunds\nRefund text."),
        ("Exceptions", "## Exceptions\nException text."),
    ]


def test_fenced_code_and_front_matter_are_not_headings(tmp_path: Path) -> None:
    text = "---\ntitle: meta\n---\n# Setup\n\n```sh\n# install it\npip install x\n```\n"
    write(tmp_path / "setup.md", text)

    [chunk] = load_chunks(spec("setup.md"), tmp_path)

    assert chunk.title == "Setup"
    assert "# install it" in chunk.text and "title: meta" not in chunk.text


def test_long_sections_split_at_sentences_with_overlap(tmp_path: Path) -> None:
    write(tmp_path / "doc.md", "# Topics\n\n" + long_section(30) + "\n\n# Other\n\nShort.")

    chunks = load_chunks(spec("doc.md", chunk={"size": 200, "overlap": 60}), tmp_path)

    topics = [c for c in chunks if c.title == "Topics"]
    assert len(topics) > 3
    assert chunks[-1].text == "# Other\nShort."
    for chunk in topics:
        assert len(chunk.text) <= 200
        assert chunk.text.startswith("# Topics\n")
        assert chunk.text.endswith(".")
    for previous, current in pairwise(topics):
        body = current.text.removeprefix("# Topics\n")
        overlap = body[:20]
        assert overlap in previous.text, "the next chunk repeats the end of the previous one"
    joined = " ".join(c.text for c in topics)
    assert all(f"number {i} talks" in joined for i in range(30))


def test_zero_overlap_repeats_nothing(tmp_path: Path) -> None:
    text = long_section(25)
    write(tmp_path / "doc.txt", text)

    chunks = load_chunks(spec("doc.txt", chunk={"size": 150, "overlap": 0}), tmp_path)

    assert len(chunks) > 3
    assert " ".join(c.text for c in chunks) == text


def test_text_without_spaces_is_cut_at_size(tmp_path: Path) -> None:
    write(tmp_path / "blob.txt", "x" * 250)

    chunks = load_chunks(spec("blob.txt", chunk={"size": 100, "overlap": 10}), tmp_path)

    assert [len(c.text) for c in chunks] == [100, 100, 70]


def test_chunking_is_deterministic(corpus: Path) -> None:
    settings = {"size": 60, "overlap": 20}

    assert load_chunks(spec(chunk=settings), corpus) == load_chunks(spec(chunk=settings), corpus)


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        ({"size": 100, "overlap": 100}, "0 <= overlap < size"),
        ({"size": 100, "overlap": -1}, "0 <= overlap < size"),
        ({"size": 0}, "positive integer"),
        ({"size": True}, "positive integer"),
        ({"size": 100, "overlapp": 10}, "unknown key 'overlapp'"),
        ("big", "must be a mapping"),
    ],
)
def test_invalid_chunk_settings_are_reported(corpus: Path, chunk: Any, expected: str) -> None:
    retrieval = spec(chunk=chunk)

    problems = BUILTINS["tfidf"].check(retrieval, corpus)

    assert any(expected in p for p in problems), problems
    with pytest.raises(RetrievalError, match="retrieval.chunk"):
        load_chunks(retrieval, corpus)


def test_defaults_apply_without_chunk_settings(tmp_path: Path) -> None:
    write(tmp_path / "doc.txt", long_section(40))

    chunks = load_chunks(spec("doc.txt"), tmp_path)

    assert max(len(c.text) for c in chunks) <= 800
    assert len(chunks) >= 2


# --- retrievers ------------------------------------------------------------------------


@pytest.mark.parametrize("retriever", ["tfidf", "bm25"])
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("How do I reset my password?", "passwords.md"),
        ("Can I get a refund for my purchase?", "refunds.md"),
        ("When does express delivery arrive?", "shipping.md"),
        ("Is there a warranty on hardware faults?", "warranty.md"),
        ("What are the support office hours on Monday?", "hours.txt"),
    ],
)
def test_relevant_document_ranks_first(
    corpus: Path, retriever: str, query: str, expected: str
) -> None:
    hits = build(corpus, spec(retriever=retriever)).search(query, 3)

    assert hits[0].chunk.doc_id == expected
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("retriever", ["tfidf", "bm25"])
def test_zero_score_hits_are_dropped(corpus: Path, retriever: str) -> None:
    index = build(corpus, spec(retriever=retriever))

    assert index.search("zebra quantum chromodynamics", 3) == []
    assert index.search("", 3) == []
    [only] = index.search("warranty", 5)
    assert only.chunk.doc_id == "warranty.md" and only.score > 0


@pytest.mark.parametrize("retriever", ["tfidf", "bm25"])
def test_top_k_and_ties_in_chunk_order(tmp_path: Path, retriever: str) -> None:
    for name in ("c.txt", "a.txt", "b.txt"):
        write(tmp_path / "docs" / name, "parcel tracking number")
    write(tmp_path / "docs" / "d.txt", "something else entirely")

    hits = build(tmp_path, spec(retriever=retriever)).search("parcel tracking", 2)

    assert [h.chunk.doc_id for h in hits] == ["a.txt", "b.txt"]
    assert hits[0].score == hits[1].score


def test_bm25_b_controls_length_normalization(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "long.txt", "invoice " + "filler words here " * 20)
    write(tmp_path / "docs" / "short.txt", "invoice copy")
    write(tmp_path / "docs" / "other.txt", "unrelated content")

    normalized = build(tmp_path, spec(retriever="bm25")).search("invoice", 3)
    flat = build(tmp_path, spec(retriever="bm25", b=0)).search("invoice", 3)

    assert [h.chunk.doc_id for h in normalized] == ["short.txt", "long.txt"]
    assert normalized[0].score > normalized[1].score
    assert flat[0].score == pytest.approx(flat[1].score)


def test_bm25_options_are_checked(corpus: Path) -> None:
    problems = BUILTINS["bm25"].check(spec(retriever="bm25", k1=-1, b=2, k2=3), corpus)

    assert any("retrieval.k1" in p for p in problems)
    assert any("retrieval.b" in p for p in problems)
    assert any("unknown option 'k2'" in p for p in problems)


def test_tfidf_rejects_retriever_options_it_does_not_know(corpus: Path) -> None:
    [problem] = BUILTINS["tfidf"].check(spec(k1=1.2), corpus)

    assert "unknown option 'k1' for retriever 'tfidf'" in problem


def test_stop_words_only_corpus_cannot_be_indexed(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "a.txt", "the and of")

    with pytest.raises(RetrievalError, match="no indexable words"):
        build(tmp_path, spec())


# --- python retriever ------------------------------------------------------------------

SEARCH_FILE = """
CALLS = []

def search(query, top_k):
    CALLS.append((query, top_k))
    return [f"{query} answer {i}" for i in range(5)]

def scored(query, top_k):
    return [{"id": "kb.md#3", "text": "best", "score": 0.9, "title": "KB"},
            {"text": "anonymous", "score": 0.2}]

async def later(query, top_k):
    return ["async answer"]

def broken(query, top_k):
    raise ValueError("index offline")

def wrong(query, top_k):
    return "not a list"
"""


@pytest.fixture
def python_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "path", list(sys.path))
    write(tmp_path / "my_retriever.py", SEARCH_FILE)
    return tmp_path


def python_index(base: Path, function: str) -> Index:
    return build(base, spec(None, retriever="python", function=function))


def test_python_file_function_returning_strings(python_dir: Path) -> None:
    hits = python_index(python_dir, "my_retriever.py:search").search("refund", 2)

    assert [(h.chunk.id, h.chunk.text, h.rank) for h in hits] == [
        ("search#1", "refund answer 0", 1),
        ("search#2", "refund answer 1", 2),
    ]
    assert hits[0].score > hits[1].score


def test_python_module_function_returning_mappings(
    python_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"retriever_mod_{id(python_dir)}"
    write(python_dir / f"{name}.py", SEARCH_FILE)
    monkeypatch.delitem(sys.modules, name, raising=False)

    hits = python_index(python_dir, f"{name}:scored").search("q", 3)

    assert hits == [
        Hit(Chunk("kb.md#3", "kb.md", "best", "KB"), 0.9, 1),
        Hit(Chunk("scored#2", "scored", "anonymous"), 0.2, 2),
    ]
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_python_async_function(python_dir: Path) -> None:
    [hit] = python_index(python_dir, "my_retriever.py:later").search("q", 3)

    assert hit.chunk.text == "async answer"


@pytest.mark.parametrize(
    ("function", "expected"),
    [("my_retriever.py:broken", "failed: ValueError: index offline"),
     ("my_retriever.py:wrong", "must return a list")],
)
def test_python_function_failures_are_retrieval_errors(
    python_dir: Path, function: str, expected: str
) -> None:
    index = python_index(python_dir, function)

    with pytest.raises(RetrievalError, match=expected):
        index.search("q", 3)


def test_python_missing_attribute_is_reported_at_build(python_dir: Path) -> None:
    retrieval = spec(None, retriever="python", function="my_retriever.py:nothing")

    with pytest.raises(RetrievalError, match="has no function 'nothing'"):
        BUILTINS["python"].build([], retrieval, python_dir)


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (None, "retrieval.function is required"),
        ("no_colon", "must be 'module:function'"),
        ("mod:1bad", "must be 'module:function'"),
        ("missing.py:search", "'missing.py' not found"),
        ("not a module:search", "is not a module name"),
    ],
)
def test_python_check(tmp_path: Path, function: str | None, expected: str) -> None:
    options = {} if function is None else {"function": function}
    retrieval = spec(None, retriever="python", **options)

    problems = BUILTINS["python"].check(retrieval, tmp_path)

    assert any(expected in p for p in problems), problems


def test_python_check_imports_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    write(tmp_path / "side.py", f"open({str(marker)!r}, 'w').close()\ndef search(q, k): return []")
    retrieval = spec(None, retriever="python", function="side.py:search")

    assert BUILTINS["python"].check(retrieval, tmp_path) == []
    assert not marker.exists()


# --- session -----------------------------------------------------------------------------


class CountingRetriever:
    name = "counting"

    def __init__(self, delay: float = 0.0) -> None:
        self.builds: list[int] = []
        self.delay = delay

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        return []

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        time.sleep(self.delay)
        self.builds.append(len(chunks))
        return BUILTINS["bm25"].build(chunks, spec, base_dir)


def counting(**options: Any) -> RetrievalSpec:
    return spec("docs", retriever="counting", **options)


def test_session_builds_each_index_once(corpus: Path, tmp_path: Path) -> None:
    retriever = CountingRetriever()
    session = RetrievalSession({"counting": retriever})

    first = session.index_for(counting(), corpus)
    again = session.index_for(spec("docs", retriever="counting", top_k=1, query="{{ q }}"), corpus)

    assert again is first
    assert len(retriever.builds) == 1
    session.index_for(counting(chunk={"size": 50, "overlap": 10}), corpus)
    assert len(retriever.builds) == 2


def test_session_keys_on_content_not_on_path(corpus: Path, tmp_path: Path) -> None:
    retriever = CountingRetriever()
    session = RetrievalSession({"counting": retriever})
    copy = tmp_path / "copy"
    for name, text in CORPUS.items():
        write(copy / "docs" / name, text)

    first = session.index_for(counting(), corpus)
    assert session.index_for(counting(), copy) is first
    write(copy / "docs" / "hours.txt", "Changed hours.")
    assert session.index_for(counting(), copy) is not first
    assert len(retriever.builds) == 2


def test_session_is_thread_safe(corpus: Path) -> None:
    retriever = CountingRetriever(delay=0.05)
    session = RetrievalSession({"counting": retriever})
    indexes: list[Index] = []

    def ask() -> None:
        indexes.append(session.index_for(counting(), corpus))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(retriever.builds) == 1
    assert len(indexes) == 8 and all(index is indexes[0] for index in indexes)


def test_session_reports_unknown_retrievers_and_invalid_specs(corpus: Path) -> None:
    session = RetrievalSession(BUILTINS)

    known = r"unknown retriever 'dense' \(available: bm25, embedding, hybrid, python, tfidf\)"
    with pytest.raises(RetrievalError, match=known):
        session.index_for(spec(retriever="dense"), corpus)
    with pytest.raises(RetrievalError, match="not found") as info:
        session.index_for(spec("missing", top_k=0), corpus)
    assert "retrieval.top_k" in str(info.value)


def test_session_with_builtin_retrievers_answers_queries(corpus: Path) -> None:
    session = RetrievalSession(BUILTINS)

    hits = session.index_for(spec(retriever="bm25"), corpus).search("reset password", 1)

    assert [h.chunk.id for h in hits] == ["passwords.md#1"]


def test_tfidf_scores_are_the_cosines_scikit_learn_computes(corpus: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    chunks = load_chunks(spec(), corpus)
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, ngram_range=(1, 2))
    matrix = vectorizer.fit_transform([c.text for c in chunks])
    query = "reset the password, reset it now"
    expected = (matrix @ vectorizer.transform([query]).T).toarray().ravel()

    hits = build(corpus, spec()).search(query, 10)

    assert hits and {h.chunk.id: h.score for h in hits} == pytest.approx(
        {c.id: float(e) for c, e in zip(chunks, expected, strict=True) if e > 0}
    )


# --- on-disk index cache ------------------------------------------------------------------


def stored(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.npz"))


def hits_of(index: Index, query: str = "reset password refund") -> list[tuple[str, float]]:
    return [(h.chunk.id, h.score) for h in index.search(query, 5)]


@pytest.mark.parametrize("retriever", ["tfidf", "bm25", "hybrid"])
def test_disk_cache_reuses_an_unchanged_source(corpus: Path, retriever: str) -> None:
    cache = corpus / "cache"
    first = RetrievalSession(BUILTINS, cache_dir=cache)
    built = hits_of(first.index_for(spec(retriever=retriever), corpus))
    assert (first.builds, first.loads, len(stored(cache))) == (1, 0, 1)

    fresh = RetrievalSession(BUILTINS, cache_dir=cache)
    loaded = hits_of(fresh.index_for(spec(retriever=retriever), corpus))

    assert (fresh.builds, fresh.loads) == (0, 1)
    assert loaded == built and loaded


def test_disk_cache_rebuilds_when_a_file_or_a_setting_changes(corpus: Path) -> None:
    cache = corpus / "cache"
    RetrievalSession(BUILTINS, cache_dir=cache).index_for(spec(), corpus)
    write(corpus / "docs" / "hours.txt", "Our support office is open on Sundays only.")

    changed = RetrievalSession(BUILTINS, cache_dir=cache)
    index = changed.index_for(spec(), corpus)
    changed.index_for(spec(chunk={"size": 60, "overlap": 0}), corpus)
    changed.index_for(spec(retriever="bm25", k1=1.2), corpus)

    assert (changed.builds, changed.loads) == (3, 0)
    assert index.search("open on Sundays", 1)[0].chunk.doc_id == "hours.txt"
    assert len(stored(cache)) == 4
    again = RetrievalSession(BUILTINS, cache_dir=cache)
    again.index_for(spec(), corpus)
    assert (again.builds, again.loads) == (0, 1)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],
        lambda data: b"not an index at all" * 10,
        lambda data: data.replace(b"format", b"formit"),
    ],
    ids=["empty", "truncated", "garbage", "bad-meta"],
)
def test_a_damaged_cache_file_is_rebuilt(corpus: Path, damage: Any) -> None:
    cache = corpus / "cache"
    expected = hits_of(RetrievalSession(BUILTINS, cache_dir=cache).index_for(spec(), corpus))
    [path] = stored(cache)
    path.write_bytes(damage(path.read_bytes()))

    session = RetrievalSession(BUILTINS, cache_dir=cache)
    assert hits_of(session.index_for(spec(), corpus)) == expected
    assert (session.builds, session.loads) == (1, 0)

    later = RetrievalSession(BUILTINS, cache_dir=cache)
    later.index_for(spec(), corpus)
    assert (later.builds, later.loads) == (0, 1)


def test_a_cache_file_of_another_index_is_not_used(corpus: Path) -> None:
    cache = corpus / "cache"
    RetrievalSession(BUILTINS, cache_dir=cache).index_for(spec(), corpus)
    [tfidf_file] = stored(cache)
    session = RetrievalSession(BUILTINS, cache_dir=cache)
    session.index_for(spec(retriever="bm25"), corpus)
    bm25_file = next(p for p in stored(cache) if p != tfidf_file)
    bm25_file.write_bytes(tfidf_file.read_bytes())

    fresh = RetrievalSession(BUILTINS, cache_dir=cache)
    fresh.index_for(spec(retriever="bm25"), corpus)

    assert (fresh.builds, fresh.loads) == (1, 0)


def test_unstorable_retrievers_and_unwritable_folders_still_work(
    corpus: Path, tmp_path: Path
) -> None:
    write(tmp_path / "mine.py", "def search(query, top_k):\n    return ['found']\n")
    blocker = write(tmp_path / "file", "a file where the cache folder should be")
    counting_retriever = CountingRetriever()
    session = RetrievalSession({**BUILTINS, "counting": counting_retriever}, cache_dir=blocker)

    session.index_for(counting(), corpus)
    session.index_for(spec(None, retriever="python", function="mine.py:search"), tmp_path)
    session.index_for(spec(), corpus)

    assert session.builds == 3 and len(counting_retriever.builds) == 1
    assert blocker.read_text() == "a file where the cache folder should be"


def _build_in_process(cache: str, base: str, barrier: Any, results: Any) -> None:
    from llmopt.retrieval import RetrievalSession, builtin_retriever_types

    session = RetrievalSession({r.name: r for r in builtin_retriever_types()}, Path(cache))
    barrier.wait(timeout=60)
    index = session.index_for(RetrievalSpec(source="docs", retriever="bm25"), Path(base))
    results.put((session.builds + session.loads, hits_of(index)))


def test_concurrent_processes_share_one_cache_file(corpus: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    cache = corpus / "cache"
    workers = [
        context.Process(target=_build_in_process, args=(str(cache), str(corpus), barrier, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)

    assert [worker.exitcode for worker in workers] == [0, 0]
    assert answers[0] == answers[1] and answers[0][0] == 1
    assert len(stored(cache)) == 1 and sorted(p.suffix for p in cache.iterdir()) == [".npz"]
    session = RetrievalSession(BUILTINS, cache_dir=cache)
    assert hits_of(session.index_for(spec(retriever="bm25"), corpus)) == answers[0][1]
    assert session.loads == 1


# --- hybrid ------------------------------------------------------------------------------


class FixedRetriever:
    """Answers every query with the same ranking of document ids."""

    def __init__(self, name: str, ranking: Sequence[str]) -> None:
        self.name = name
        self.ranking = ranking

    def check(self, spec: RetrievalSpec, base_dir: Path) -> list[str]:
        return []

    def build(self, chunks: Sequence[Chunk], spec: RetrievalSpec, base_dir: Path) -> Index:
        return FixedIndex([next(c for c in chunks if c.doc_id == d) for d in self.ranking])


class FixedIndex:
    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self.chunks = chunks

    def search(self, query: str, top_k: int) -> list[Hit]:
        return [Hit(c, 1.0, rank) for rank, c in enumerate(self.chunks[:top_k], start=1)]


def fused(
    corpus: Path, rankings: dict[str, list[str]], top_k: int = 5, **options: Any
) -> list[Hit]:
    members = {name: FixedRetriever(name, ranking) for name, ranking in rankings.items()}
    hybrid = HybridRetriever(members)
    retrieval = spec(retriever="hybrid", top_k=top_k, retrievers=list(rankings), **options)
    assert hybrid.check(retrieval, corpus) == []
    return hybrid.build(load_chunks(retrieval, corpus), retrieval, corpus).search("any", top_k)


def test_hybrid_fuses_ranks_by_reciprocal_rank(corpus: Path) -> None:
    hits = fused(
        corpus,
        {"a": ["refunds.md", "shipping.md", "warranty.md"], "b": ["warranty.md", "refunds.md"]},
        k=1,
    )

    # refunds 1/(1+1) + 1/(1+2); warranty 1/(1+3) + 1/(1+1); shipping 1/(1+2)
    assert [(h.chunk.doc_id, h.rank) for h in hits] == [
        ("refunds.md", 1), ("warranty.md", 2), ("shipping.md", 3)
    ]
    assert [h.score for h in hits] == pytest.approx([5 / 6, 3 / 4, 1 / 3])


def test_hybrid_default_k_ties_and_top_k(corpus: Path) -> None:
    hits = fused(
        corpus,
        {"a": ["warranty.md", "hours.txt", "refunds.md"], "b": ["hours.txt", "warranty.md"]},
        top_k=2,
    )

    # warranty and hours tie at 1/61 + 1/62: chunk order (hours.txt sorts first) decides
    assert [h.chunk.doc_id for h in hits] == ["hours.txt", "warranty.md"]
    assert hits[0].score == hits[1].score == pytest.approx(1 / 61 + 1 / 62)


def test_hybrid_of_tfidf_and_bm25(corpus: Path) -> None:
    query = "How do I reset my password?"
    members = [build(corpus, spec(retriever=name)).search(query, 50) for name in ("tfidf", "bm25")]
    expected: dict[str, float] = {}
    for hits in members:
        for hit in hits:
            expected[hit.chunk.id] = expected.get(hit.chunk.id, 0.0) + 1 / (60 + hit.rank)

    hits = build(corpus, spec(retriever="hybrid")).search(query, 10)

    assert hits[0].chunk.doc_id == "passwords.md"
    assert {h.chunk.id: h.score for h in hits} == pytest.approx(expected)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


def test_hybrid_with_a_python_member(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "a.txt", "parcel tracking number")
    write(tmp_path / "mine.py", "def search(query, top_k):\n    return ['from my function']\n")
    retrieval = spec(
        retriever="hybrid",
        retrievers=["bm25", {"retriever": "python", "function": "mine.py:search"}],
    )
    assert BUILTINS["hybrid"].check(retrieval, tmp_path) == []
    session = RetrievalSession(BUILTINS, cache_dir=tmp_path / "cache")

    hits = session.index_for(retrieval, tmp_path).search("parcel", 3)

    assert [h.chunk.text for h in hits] == ["parcel tracking number", "from my function"]
    assert hits[0].score == hits[1].score == pytest.approx(1 / 61)
    assert stored(tmp_path / "cache") == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"retrievers": ["tfidf", "bm52"]},
         "retrieval.retrievers[1]: unknown retriever 'bm52' (did you mean 'bm25'?"
         " known: bm25, embedding, python, tfidf)"),
        ({"retrievers": ["dense"]},
         "retrieval.retrievers[0]: unknown retriever 'dense' (known: bm25, embedding, python, tfidf)"),
        ({"retrievers": []},
         "retrieval.retrievers must be a non-empty list of retriever names, got []"),
        ({"retrievers": "bm25"},
         "retrieval.retrievers must be a non-empty list of retriever names, got 'bm25'"),
        ({"retrievers": ["bm25", "hybrid"]},
         "retrieval.retrievers[1]: 'hybrid' cannot fuse itself (name the retrievers to fuse)"),
        ({"retrievers": ["python"]},
         "retrieval.retrievers[0].function is required by retriever 'python'"
         " ('module:function' or 'path/to/file.py:function')"),
        ({"retrievers": [{"retriever": "bm25", "k1": -1}]},
         "retrieval.retrievers[0].k1 must be a number >= 0, got -1"),
        ({"retrievers": [{"retriever": "tfidf", "k1": 1}]},
         "retrieval.retrievers[0]: unknown option 'k1' for retriever 'tfidf'"
         " (known: chunk, query)"),
        ({"retrievers": [{"k1": 1}]},
         "retrieval.retrievers[0] must be a retriever name or a mapping"
         " {retriever: <name>, <options>...}, got {'k1': 1}"),
        ({"k": -1}, "retrieval.k must be a number >= 0, got -1"),
        ({"k": "60"}, "retrieval.k must be a number >= 0, got '60'"),
        ({"depth": 3},
         "retrieval: unknown option 'depth' for retriever 'hybrid'"
         " (known: chunk, k, query, retrievers)"),
    ],
)
def test_hybrid_check_messages(corpus: Path, options: dict[str, Any], expected: str) -> None:
    assert BUILTINS["hybrid"].check(spec(retriever="hybrid", **options), corpus) == [expected]


def test_hybrid_check_accepts_valid_members_and_needs_a_source_once(corpus: Path) -> None:
    write(corpus / "mine.py", "def search(query, top_k):\n    return []\n")
    members = [
        "tfidf",
        {"retriever": "bm25", "b": 0.5},
        {"retriever": "python", "function": "mine.py:search"},
    ]
    hybrid = BUILTINS["hybrid"]

    assert hybrid.check(spec(retriever="hybrid", retrievers=members, k=10), corpus) == []
    assert hybrid.check(spec(None, retriever="hybrid", retrievers=members), corpus) == [
        "retrieval.source is required by retriever 'hybrid' (for 'tfidf', 'bm25')"
    ]
    assert hybrid.check(spec(None, retriever="hybrid", retrievers=members[2:]), corpus) == []


# --- context and package ---------------------------------------------------------------


def test_format_context() -> None:
    hits = [
        Hit(Chunk("refunds.md#2", "refunds.md", "# Refunds\nWithin 30 days.", "Refunds"), 0.8, 1),
        Hit(Chunk("faq.txt#1", "faq.txt", "Ask us."), 0.1, 2),
    ]

    assert format_context(hits) == (
        "[refunds.md#2] # Refunds\nWithin 30 days.\n\n[faq.txt#1] Ask us."
    )
    assert format_context([]) == ""
    variables = template_variables(hits)
    assert variables["context"] == format_context(hits)
    assert variables["documents"][1] == {
        "id": "faq.txt#1", "doc_id": "faq.txt", "title": None,
        "text": "Ask us.", "score": 0.1, "rank": 2,
    }


def test_builtin_retriever_types() -> None:
    assert sorted(BUILTINS) == ["bm25", "embedding", "hybrid", "python", "tfidf"]


def test_importing_retrieval_is_cheap() -> None:
    code = (
        "import sys, llmopt.retrieval; "
        "print(sorted(m for m in ('sklearn', 'numpy', 'scipy') if m in sys.modules))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"

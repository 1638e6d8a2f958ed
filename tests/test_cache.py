"""The SQLite response cache: keys, round trips, hits, several processes, corruption."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from llmopt.dataset._case import Case
from llmopt.engine.cache import CACHE_FILE_NAME, ResponseCache, request_identity
from llmopt.errors import LLMOptError
from llmopt.provider import Request, Response


def _request(**overrides: object) -> Request:
    values: dict = {
        "messages": [{"role": "user", "content": "hi"}],
        "prompt": "hi",
        "case": Case(id="c1", fields={"q": "hi", "answer": "hello"}),
        "params": {"temperature": 0},
    }
    values.update(overrides)
    return Request(**values)


def test_round_trip_marks_hit_cached_with_original_figures(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    original = Response("out", latency_s=1.25, input_tokens=3, output_tokens=4, model="m", cost_usd=0.5)
    cache.put("k", original)
    got = cache.get("k")
    assert got == Response("out", 1.25, 3, 4, "m", 0.5, cached=True)
    assert (cache.hits, cache.misses, cache.writes) == (1, 0, 1)
    cache.close()


def test_miss_counts_and_does_not_create_anything(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "sub")
    assert cache.get("absent") is None
    assert cache.misses == 1
    assert not (tmp_path / "sub").exists()


def test_directory_is_created_on_first_write(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "a" / "b")
    cache.put("k", Response("x"))
    assert (tmp_path / "a" / "b" / CACHE_FILE_NAME).is_file()
    assert cache.get("absent") is None
    cache.close()


def test_values_survive_a_new_instance_and_use_wal(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        cache.put("k", Response("persisted"))
    with ResponseCache(tmp_path) as again:
        assert again.get("k").text == "persisted"
    mode = sqlite3.connect(tmp_path / CACHE_FILE_NAME).execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


def test_put_replaces_older_value(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        cache.put("k", Response("old"))
        cache.put("k", Response("new"))
        assert cache.get("k").text == "new"


def test_key_is_independent_of_dict_order(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    a = {"provider": "p", "params": {"a": 1, "b": [1, 2]}, "x": "é"}
    b = {"x": "é", "params": {"b": [1, 2], "a": 1}, "provider": "p"}
    assert cache.key(a) == cache.key(b)
    assert len(cache.key(a)) == 64
    assert cache.key(a) != cache.key({**a, "x": "e"})


def test_request_identity_holds_what_changes_the_answer() -> None:
    ident = request_identity("local", {"model": "m.gguf", "sha256": "abc"}, _request(repeat=2))
    assert ident == {
        "provider": "local",
        "identity": {"model": "m.gguf", "sha256": "abc"},
        "params": {"temperature": 0},
        "messages": [{"role": "user", "content": "hi"}],
        "repeat": 2,
    }


def test_request_identity_ignores_case_fields_unless_asked() -> None:
    cache = ResponseCache(Path("unused"))
    one = _request(case=Case(id="a", fields={"q": "1"}))
    two = _request(case=Case(id="b", fields={"q": "2"}))
    same = [cache.key(request_identity("p", {}, r)) for r in (one, two)]
    assert same[0] == same[1]
    apart = [cache.key(request_identity("p", {}, r, include_case=True)) for r in (one, two)]
    assert apart[0] != apart[1]


def test_keys_differ_by_repeat_params_and_identity() -> None:
    cache = ResponseCache(Path("unused"))
    base = cache.key(request_identity("p", {"id": "m"}, _request()))
    assert base != cache.key(request_identity("p", {"id": "m"}, _request(repeat=1)))
    assert base != cache.key(request_identity("p", {"id": "m"}, _request(params={"temperature": 1})))
    assert base != cache.key(request_identity("p", {"id": "other"}, _request()))
    assert base != cache.key(request_identity("q", {"id": "m"}, _request()))


def test_corrupt_file_names_path_and_remedy(tmp_path: Path) -> None:
    (tmp_path / CACHE_FILE_NAME).write_bytes(b"this is not a database at all" * 100)
    cache = ResponseCache(tmp_path)
    with pytest.raises(LLMOptError) as info:
        cache.get("k")
    message = str(info.value)
    assert str(tmp_path / CACHE_FILE_NAME) in message
    assert "delete" in message and "--llmopt-no-cache" in message


def test_threads_share_one_cache(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)

    def work(n: int) -> None:
        for i in range(50):
            cache.put(f"{n}-{i}", Response(f"{n}-{i}"))
            assert cache.get(f"{n}-{i}").text == f"{n}-{i}"

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (cache.writes, cache.hits) == (200, 200)
    cache.close()


def _worker(directory: str, worker: int, count: int) -> None:
    cache = ResponseCache(Path(directory))
    for i in range(count):
        cache.put(f"{worker}-{i}", Response(f"value {worker}-{i}", latency_s=float(i)))
        got = cache.get(f"{worker}-{i}")
        assert got is not None and got.text == f"value {worker}-{i}"
        cache.get(f"{(worker + 1) % 4}-{i}")  # the neighbour's key, written or not yet
    cache.close()


def test_several_processes_read_and_write_at_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with ResponseCache(tmp_path) as cache:
        for w in range(4):
            for i in range(200):
                assert cache.get(f"{w}-{i}") == Response(f"value {w}-{i}", latency_s=float(i), cached=True)


def test_lock_held_too_long_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmopt.engine.cache

    with ResponseCache(tmp_path) as cache:
        cache.put("k", Response("x"))
    holder = sqlite3.connect(tmp_path / CACHE_FILE_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(llmopt.engine.cache, "_BUSY_TIMEOUT_S", 0.1)
    cache = ResponseCache(tmp_path)
    try:
        cache.put("k2", Response("y"))  # waits in memory
        assert cache.get("k2").text == "y"
        with pytest.raises(LLMOptError, match="stayed locked .*--llmopt-no-cache"):
            cache.flush()
        assert cache.get("k2").text == "y"  # kept for a later commit
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        cache.close()


def _committed(directory: Path) -> set[str]:
    """The keys another connection sees (what is on disk)."""
    with sqlite3.connect(directory / CACHE_FILE_NAME) as other:
        return {key for (key,) in other.execute("SELECT key FROM responses")}


def test_writes_are_committed_together_and_read_back_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmopt.engine.cache

    monkeypatch.setattr(llmopt.engine.cache, "_FLUSH_AFTER_S", 3600.0)
    cache = ResponseCache(tmp_path)
    for i in range(llmopt.engine.cache._FLUSH_ROWS - 1):
        cache.put(f"k{i}", Response(f"v{i}"))
    assert _committed(tmp_path) == set()  # waiting in memory ...
    assert cache.get("k3") == Response("v3", cached=True)  # ... and answered from there
    cache.put("last", Response("v"))  # the batch is full: one transaction
    assert len(_committed(tmp_path)) == llmopt.engine.cache._FLUSH_ROWS
    cache.put("next", Response("n"))
    cache.flush()
    assert "next" in _committed(tmp_path)
    assert cache.writes == llmopt.engine.cache._FLUSH_ROWS + 1
    cache.close()


def test_a_write_after_the_wait_commits_what_waited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmopt.engine.cache

    monkeypatch.setattr(llmopt.engine.cache, "_FLUSH_AFTER_S", 0.0)
    with ResponseCache(tmp_path) as cache:
        cache.put("a", Response("x"))
        assert _committed(tmp_path) == {"a"}  # slow calls: each answer as it comes


def test_close_commits_what_waits(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache.put("a", Response("x"))
    cache.close()
    assert _committed(tmp_path) == {"a"}


def _write_and_exit(directory: str) -> None:
    cache = ResponseCache(Path(directory))
    cache.put("kept", Response("written just before the process ended"))
    # no close: the exit hook commits it


def test_a_process_that_ends_without_closing_keeps_its_answers(tmp_path: Path) -> None:
    proc = multiprocessing.get_context("spawn").Process(target=_write_and_exit, args=(str(tmp_path),))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert _committed(tmp_path) == {"kept"}


def test_two_caches_on_one_file_read_what_the_other_has_not_committed(tmp_path: Path) -> None:
    first, second = ResponseCache(tmp_path), ResponseCache(tmp_path / ".")
    first.put("k", Response("from the first"))
    assert _committed(tmp_path) == set()
    assert second.get("k") == Response("from the first", cached=True)
    second.close()  # commits what both wrote
    assert _committed(tmp_path) == {"k"}
    first.close()


def test_request_keys_are_the_keys_of_the_request_identities() -> None:
    """The composed keys equal ``key(request_identity(...))`` whatever the request holds,
    and a provider whose identity or params change between calls gets its new key."""
    from types import MappingProxyType

    from llmopt.engine.cache import RequestKeys

    cache, keys = ResponseCache(Path("unused")), RequestKeys()
    case = Case(id="c1", fields={"q": "¿qué? 😀", "n": 3, "nested": {"b": [1, 2.5, None], "a": True}})
    requests = [
        _request(),
        _request(repeat=3, params={"temperature": 0.7, "stop": ["\n", "</s>"], "extra_body": {"z": 1, "a": {"y": 2}}}),
        _request(messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "naïve \u2028 \"q\""})),
        _request(messages=[MappingProxyType({"content": "hi", "role": "user"})], case=case, context="ctx ünïcode"),
        _request(case=case, context=None, params={}),
    ]
    identities = [{"model": "gpt-4o-mini", "base_url": None}, {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
                  MappingProxyType({"file_sha256": "ab" * 32, "options": {"n_ctx": 2048}})]
    for include_case in (False, True):
        for provider in ("openai", "anthropic"):
            for identity in identities:  # the same name with a new identity: new parts
                for request in requests:
                    expected = cache.key(request_identity(provider, identity, request, include_case=include_case))
                    assert keys.key(provider, identity, request, include_case=include_case) == expected


def test_lookups_see_what_another_process_commits_within_the_flush_wait(tmp_path: Path) -> None:
    import time

    import llmopt.engine.cache

    with ResponseCache(tmp_path) as writer:
        writer.put("old", Response("o"))
    reader, other = ResponseCache(tmp_path), sqlite3.connect(tmp_path / CACHE_FILE_NAME, isolation_level=None)
    try:
        assert reader.get("new") is None  # the lookups' read transaction starts here
        other.execute("INSERT INTO responses (key, value, created) VALUES ('new', '{\"text\": \"n\"}', 0)")
        other.execute("INSERT INTO responses (key, value, created) VALUES ('later', '{\"text\": \"l\"}', 0)")
        time.sleep(llmopt.engine.cache._FLUSH_AFTER_S + 0.05)
        assert reader.get("new") == Response("n", cached=True)  # seen: the transaction was renewed
        reader.flush()  # the end of an evaluation ends it too
        other.execute("INSERT INTO responses (key, value, created) VALUES ('now', '{\"text\": \"w\"}', 0)")
        reader.flush()
        assert reader.get("now") == Response("w", cached=True)
        other.execute("BEGIN IMMEDIATE")  # the lookups' open read transaction never holds up a writer
        other.execute("COMMIT")
    finally:
        other.close()
        reader.close()


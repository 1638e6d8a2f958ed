"""Identity hashes and the names of what changed."""

from __future__ import annotations

from llmopt.identity import digest, identity_changes, identity_hash


def test_changes_name_each_field_and_nested_setting() -> None:
    old = {"model": "gpt-4o-mini-2024-07-18", "params": {"temperature": 0}, "recipe": "sha256:aa"}
    new = {"model": "gpt-4o-mini-2025-04-14", "params": {"temperature": 0.7}, "recipe": "sha256:aa"}
    assert identity_changes(old, new) == [
        "model: gpt-4o-mini-2024-07-18 -> gpt-4o-mini-2025-04-14",
        "params.temperature: 0 -> 0.7",
    ]
    assert identity_changes(old, old) == []


def test_hash_is_canonical() -> None:
    assert identity_hash({"a": 1, "b": [1, 2]}) == identity_hash({"b": [1, 2], "a": 1})
    assert identity_hash({"a": 1}) != identity_hash({"a": 2})
    assert digest("x", 12).startswith("sha256:") and len(digest("x", 12)) == len("sha256:") + 12


def test_missing_field_reads_none() -> None:
    assert identity_changes({"base_url": None}, {"base_url": "http://127.0.0.1:8000"}) == [
        "base_url: none -> http://127.0.0.1:8000"
    ]

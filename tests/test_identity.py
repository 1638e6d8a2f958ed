"""Identity hashes and the names of what changed."""

from __future__ import annotations

from llmopt.engine.identity import digest, identity_changes, identity_hash


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


def test_identity_follows_dataset_recipe_retrieval_content_and_model(tmp_path) -> None:
    from llmopt.dataset import Case
    from llmopt.engine.identity import variant_identity
    from llmopt.spec import ModelSpec, RecipeSpec, RetrievalSpec, TaskSpec, VariantSpec

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Refunds within 30 days.")
    variant = VariantSpec(
        name="rag",
        task=TaskSpec(),
        recipe=RecipeSpec(template="{{ question }}"),
        model=ModelSpec(provider="openai", id="gpt-4o-mini-2024-07-18", params={"temperature": 0}),
        retrieval=RetrievalSpec(source="docs"),
    )
    cases = [Case(id="q1", fields={"question": "refund?"})]
    metrics = {"contains": ("contains", {})}
    first = variant_identity(variant, tmp_path, cases, metrics)
    assert variant_identity(variant, tmp_path, cases, metrics) == first
    (docs / "a.md").write_text("Refunds within 14 days.")
    moved = variant_identity(variant, tmp_path, cases, metrics)
    assert [line.split(":")[0] for line in identity_changes(first, moved)] == ["retrieval_content"]
    other = VariantSpec(
        name="rag",
        task=TaskSpec(),
        recipe=RecipeSpec(template="Q: {{ question }}"),
        model=ModelSpec(provider="openai", id="gpt-4o-mini-2025-04-14", params={"temperature": 0}),
        retrieval=RetrievalSpec(source="docs"),
    )
    changed = identity_changes(moved, variant_identity(other, tmp_path, [Case(id="q1", fields={})], metrics))
    assert [line.split(":")[0] for line in changed] == ["dataset", "model", "recipe"]
    assert "model: gpt-4o-mini-2024-07-18 -> gpt-4o-mini-2025-04-14" in changed

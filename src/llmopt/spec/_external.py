"""Checks that ask other parts of llmopt: templates, providers, datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._merge import Merged
from ._model import VariantSpec
from ._problems import Issue, KeyPath
from ._suggest import unknown_name

if TYPE_CHECKING:
    from ..registry import Registry


def written_issues(data: dict[str, Any], registry: "Registry | None") -> list[Issue]:
    """Templates and provider names, checked where they are written (top level and
    each variant), whatever else is wrong with the file."""
    issues: list[Issue] = []
    for base, part in _places(data):
        recipe, model = part.get("recipe"), part.get("model")
        if isinstance(recipe, dict):
            issues += _template_issues(recipe, base + ("recipe",))
        if registry is not None and isinstance(model, dict) and isinstance(model.get("provider"), str):
            issues += _name_issues("provider", model["provider"], base + ("model", "provider"), registry.providers)
        retrieval = part.get("retrieval")
        if registry is not None and isinstance(retrieval, dict) and isinstance(retrieval.get("retriever"), str):
            path = base + ("retrieval", "retriever")
            issues += _name_issues("retriever", retrieval["retriever"], path, registry.retrievers)
    return issues


def _places(data: dict[str, Any]) -> list[tuple[KeyPath, dict[str, Any]]]:
    places: list[tuple[KeyPath, dict[str, Any]]] = [((), data)]
    variants = data.get("variants")
    if isinstance(variants, dict):
        places += [(("variants", name), part) for name, part in variants.items() if isinstance(part, dict)]
    return places


def _template_issues(recipe: dict[str, Any], path: KeyPath) -> list[Issue]:
    from ..recipe import check_template

    issues = []
    for key in ("system", "template"):
        source = recipe.get(key)
        message = check_template(source) if isinstance(source, str) else None
        if message is not None:
            issues.append(Issue(path + (key,), message, at_value=True))
    return issues


def _name_issues(kind: str, name: str, path: KeyPath, known: "dict[str, Any]") -> list[Issue]:
    if name in known:
        return []
    return [Issue(path, unknown_name(kind, name, sorted(known)), at_value=True)]


def variant_issues(variant: VariantSpec, merged: Merged, spec_path: Path, registry: "Registry | None") -> list[Issue]:
    """Problems of one built variant, each placed where its part was written."""
    issues = _dataset_issues(variant, merged, spec_path)
    model = variant.model
    provider_type = registry.providers.get(model.provider) if registry is not None and model is not None else None
    if provider_type is not None and model is not None:
        found = provider_type.check(model, spec_path.absolute().parent)
        issues += [Issue(merged.source(("model",)), message) for message in found]
    if variant.retrieval is not None:
        issues += _retrieval_issues(variant, merged, spec_path, registry)
    return issues


def _retrieval_issues(
    variant: VariantSpec, merged: Merged, spec_path: Path, registry: "Registry | None"
) -> list[Issue]:
    from ..retrieval import check_source

    assert variant.retrieval is not None
    base_dir = spec_path.absolute().parent
    where = merged.source(("retrieval",))
    found = check_source(variant.retrieval, base_dir) if variant.retrieval.source is not None else []
    retriever = registry.retrievers.get(variant.retrieval.retriever) if registry is not None else None
    if retriever is not None:
        found += retriever.check(variant.retrieval, base_dir)
    return [Issue(where, message) for message in dict.fromkeys(found)]


def _dataset_issues(variant: VariantSpec, merged: Merged, spec_path: Path) -> list[Issue]:
    from ..dataset import check_task, check_training

    key = "dataset" if variant.task.dataset is not None else "cases"
    where = merged.source(("task", key))
    issues = [Issue(where, message, at_value=True) for message in check_task(variant.task, spec_path)]
    train = merged.source(("task", "train"))
    return issues + [Issue(train, message, at_value=True) for message in check_training(variant.task, spec_path)]

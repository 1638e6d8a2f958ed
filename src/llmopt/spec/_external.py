"""Checks that ask other parts of llmopt: templates, providers, datasets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ._build import build_model, build_retrieval, build_task
from ._merge import Merged
from ._model import Location, ModelSpec, RetrievalSpec, TaskSpec, VariantSpec
from ._problems import Issue, KeyPath
from ._schema import number_problem
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
        if registry is not None and isinstance(recipe, dict) and isinstance(recipe.get("demos"), dict):
            issues += demos_name_issues(recipe["demos"], base + ("recipe", "demos"), registry)
    return issues


def demos_name_issues(demos: dict[str, Any], path: KeyPath, registry: "Registry") -> list[Issue]:
    """The retriever, teacher provider and metric a ``demos`` setting names."""
    issues: list[Issue] = []
    if isinstance(demos.get("retriever"), str):
        issues += _name_issues("retriever", demos["retriever"], path + ("retriever",), registry.retrievers)
    teacher = demos.get("teacher")
    if isinstance(teacher, dict) and isinstance(teacher.get("provider"), str):
        issues += _name_issues("provider", teacher["provider"], path + ("teacher", "provider"), registry.providers)
    if isinstance(demos.get("metric"), str):
        issues += _name_issues("metric", demos["metric"], path + ("metric",), registry.metrics)
    return issues


#: Free-form mappings whose numbers llmopt itself reads (metric options, prices, the
#: embedding model): a NaN or an infinity there is refused as in the typed keys.
_NUMBER_PLACES = frozenset({"args", "price", "embedding"})
#: Data and settings passed on as written: cases, a recipe's field values, generation params.
_AS_WRITTEN = frozenset({"cases", "fields", "params"})


def number_issues(data: dict[str, Any]) -> list[Issue]:
    """Non-finite or oversized numbers inside the free-form mappings llmopt reads."""
    issues = []
    for path, value in _numbers(data, (), False):
        problem = number_problem(value)
        if problem is not None:
            issues.append(Issue(path, problem, at_value=True))
    return issues


def _numbers(value: Any, path: KeyPath, inside: bool) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in _AS_WRITTEN:
                yield from _numbers(item, path + (key,), inside or key in _NUMBER_PLACES)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, path + (index,), inside)
    elif inside and isinstance(value, (int, float)):
        yield path, value


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
    issues = _dataset_issues(variant.task, merged, spec_path)
    if variant.model is not None:
        issues += _model_issues(variant.model, merged, spec_path, registry)
    if variant.retrieval is not None:
        issues += _retrieval_issues(variant.retrieval, merged, spec_path, registry)
    if variant.recipe.demos is not None:
        issues += _demos_issues(variant, merged)
    return issues


def _demos_issues(variant: VariantSpec, merged: Merged) -> list[Issue]:
    """Demonstrations need training cases, and bootstrap a metric to call an answer right."""
    demos, task = variant.recipe.demos, variant.task
    assert demos is not None
    issues: list[Issue] = []
    where = merged.source(("recipe", "demos"))
    if task.train is None and (task.split is None or task.split.train <= 0):
        issues.append(Issue(where, "demos come from the training cases only: give task.train (a dataset file) "
                                   "or a train share in task.split (train: 0.5, dev: 0.25, test: 0.25)"))
    if demos.select == "bootstrap" and demos.metric is None:
        issues.append(Issue(where, "bootstrap demos need the metric that decides a right answer: "
                                   "give demos.metric (and args)"))
    return issues


def partial_issues(merged: Merged, spec_path: Path, registry: "Registry | None", sound: set[str]) -> list[Issue]:
    """The same checks for a variant that could not be built, on each sound section."""
    data = merged.data
    issues: list[Issue] = []
    if "task" in sound and isinstance(data.get("task"), dict):
        issues += _dataset_issues(build_task(data["task"], spec_path, Location("")), merged, spec_path)
    model = data.get("model")
    if "model" in sound and isinstance(model, dict) and isinstance(model.get("provider"), str):
        issues += _model_issues(build_model(model), merged, spec_path, registry)
    if "retrieval" in sound and isinstance(data.get("retrieval"), dict):
        issues += _retrieval_issues(build_retrieval(data["retrieval"]), merged, spec_path, registry)
    return issues


def _model_issues(model: ModelSpec, merged: Merged, spec_path: Path, registry: "Registry | None") -> list[Issue]:
    provider_type = registry.providers.get(model.provider) if registry is not None else None
    if provider_type is None:
        return []
    found = guarded(provider_type.check, model, spec_path.absolute().parent)
    written = merged.data.get("model")
    keys = set(written) if isinstance(written, dict) else set()
    return [Issue(merged.source(_named_key(message, keys)), message) for message in found]


_MODEL_KEY = re.compile(r"\bmodel((?:\.[A-Za-z_][\w-]*)+)")


def _named_key(message: str, keys: set[str]) -> KeyPath:
    """The key a provider's problem names (``model.options.precision must be ...``), so
    the problem points at that key's line; ``model`` when it names none of ``keys``
    (the model's own keys: a file called ``model.gguf`` names no key)."""
    named = _MODEL_KEY.search(message)
    parts = named.group(1)[1:].split(".") if named else []
    return ("model", *parts) if parts and parts[0] in keys else ("model",)


def _retrieval_issues(
    retrieval: RetrievalSpec, merged: Merged, spec_path: Path, registry: "Registry | None"
) -> list[Issue]:
    from ..retrieval import check_source

    base_dir = spec_path.absolute().parent
    where = merged.source(("retrieval",))
    found = guarded(check_source, retrieval, base_dir) if retrieval.source is not None else []
    retriever = registry.retrievers.get(retrieval.retriever) if registry is not None else None
    if retriever is not None:
        found += guarded(retriever.check, retrieval, base_dir)
    return [Issue(where, message) for message in dict.fromkeys(found)]


def _dataset_issues(task: TaskSpec, merged: Merged, spec_path: Path) -> list[Issue]:
    from ..dataset import check_task, check_training

    key = "dataset" if task.dataset is not None else "cases"
    where = merged.source(("task", key))
    issues = [Issue(where, message, at_value=True) for message in guarded(check_task, task, spec_path)]
    train = merged.source(("task", "train"))
    return issues + [Issue(train, message, at_value=True) for message in guarded(check_training, task, spec_path)]


def guarded(check: Callable[..., list[str]], *args: Any) -> list[str]:
    """``check(*args)``, with a path the system refuses (too long, a symlink loop, no
    permission) as one problem rather than an exception."""
    try:
        return list(check(*args))
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [f"cannot check this path: {reason}"]

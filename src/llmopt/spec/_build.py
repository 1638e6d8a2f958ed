"""Frozen specs from merged, validated variant data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from ._merge import Merged
from ._model import (
    DemosSpec,
    FineTuneSpec,
    Location,
    ModelSpec,
    RecipeSpec,
    RetrievalSpec,
    SplitSpec,
    TaskSpec,
    VariantSpec,
)
from ._problems import KeyPath

Locate = Callable[[KeyPath], Location]
_RETRIEVAL_OWN = ("source", "retriever", "top_k", "options")


def build_variant(merged: Merged, spec_path: Path, locate: Locate, recipe: RecipeSpec | None = None) -> VariantSpec:
    """The VariantSpec of a variant whose merged data passed every check; ``recipe`` is
    the resolved recipe (default: the inline one)."""
    data = merged.data
    retrieval = data.get("retrieval")
    return VariantSpec(
        name=merged.name,
        task=build_task(data["task"], spec_path, locate(merged.source(("task",)))),
        recipe=recipe if recipe is not None else build_recipe(data.get("recipe") or {}),
        model=build_model(data["model"]) if data.get("model") is not None else None,
        retrieval=build_retrieval(retrieval) if retrieval is not None else None,
        finetune=_finetune(data.get("finetune"), spec_path, locate(merged.source(("finetune",)))),
        location=locate(("variants", merged.name)),
    )


def build_task(task: dict[str, Any], spec_path: Path, location: Location) -> TaskSpec:
    """A TaskSpec; a dataset path is made absolute against the spec's folder."""
    dataset = task.get("dataset")
    cases = task.get("cases")
    return TaskSpec(
        dataset=resolve(spec_path, dataset) if dataset is not None else None,
        cases=tuple(dict(case) for case in cases) if cases is not None else None,
        id_field=task.get("id"),
        expected_field=task.get("expected"),
        input_field=task.get("input"),
        relevant_field=task.get("relevant"),
        sample=_int_or_none(task.get("sample")),
        seed=int(task.get("seed", 0)),
        repeat=int(task.get("repeat") or 1),
        reduce=str(task.get("reduce") or "mean"),
        cluster_field=task.get("cluster"),
        location=location,
        train=resolve(spec_path, task["train"]) if task.get("train") is not None else None,
        split=_split(task.get("split")),
        dev_dataset=resolve(spec_path, task["dev_dataset"]) if task.get("dev_dataset") is not None else None,
        test_dataset=resolve(spec_path, task["test_dataset"]) if task.get("test_dataset") is not None else None,
    )


def _split(split: dict[str, Any] | None) -> SplitSpec | None:
    if split is None:
        return None
    share = {key: float(split.get(key) or 0.0) for key in ("train", "dev", "test")}
    return SplitSpec(seed=int(split.get("seed") or 0), **share)


def _finetune(finetune: dict[str, Any] | None, spec_path: Path, location: Location) -> FineTuneSpec | None:
    """The variant's ``finetune`` section; the training file is made absolute."""
    if finetune is None:
        return None
    training_file = finetune.get("training_file")
    return FineTuneSpec(
        hyperparameters=dict(finetune.get("hyperparameters") or {}),
        suffix=finetune.get("suffix"),
        base=finetune.get("base"),
        training_file=resolve(spec_path, training_file) if training_file is not None else None,
        location=location,
    )


def build_recipe(recipe: dict[str, Any]) -> RecipeSpec:
    """The recipe; a retrieval-only variant may have none (it renders nothing)."""
    return RecipeSpec(template=recipe.get("template", ""), system=recipe.get("system"), demos=build_demos(recipe.get("demos")))


def build_demos(demos: Mapping[str, Any] | None) -> DemosSpec | None:
    """``recipe.demos`` (None for none, or ``k: 0``)."""
    if not demos or not int(demos.get("k") or 0):
        return None
    teacher = demos.get("teacher")
    return DemosSpec(
        k=int(demos["k"]),
        select=str(demos.get("select") or "random"),
        seed=int(demos.get("seed") or 0),
        teacher=build_model(dict(teacher)) if teacher else None,
        metric=demos.get("metric"),
        args=dict(demos.get("args") or {}),
        min_score=float(demos["min_score"]) if demos.get("min_score") is not None else 1.0,
        retriever=str(demos.get("retriever") or "tfidf"),
        examples=str(demos.get("examples") or "extend"),
    )


def build_model(model: dict[str, Any]) -> ModelSpec:
    return ModelSpec(
        provider=model["provider"],
        id=model.get("id"),
        params=dict(model.get("params", {})),
        concurrency=_int_or_none(model.get("concurrency")),
        base_url=model.get("base_url"),
        options=dict(model.get("options", {})),
        price=dict(model["price"]) if model.get("price") else None,
        timeout=float(model["timeout"]) if model.get("timeout") is not None else None,
        max_retries=_int_or_none(model.get("max_retries")),
        batch=bool(model["batch"]) if model.get("batch") is not None else None,
    )


def build_retrieval(retrieval: dict[str, Any]) -> RetrievalSpec:
    """source/retriever/top_k as fields; every other setting goes to ``options``."""
    options = {k: v for k, v in retrieval.items() if k not in _RETRIEVAL_OWN}
    options.update(retrieval.get("options", {}))
    return RetrievalSpec(
        source=retrieval.get("source"),
        retriever=retrieval.get("retriever", "tfidf"),
        top_k=int(retrieval.get("top_k", 3)),
        options=options,
    )


def resolve(spec_path: Path, relative: str) -> Path:
    """``relative`` against the folder of ``spec_path``, absolute and normalized."""
    folder = spec_path.absolute().parent
    return Path(os.path.normpath(folder / Path(relative).expanduser()))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)

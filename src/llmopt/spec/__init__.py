"""Spec files: safe YAML loading with positions, the packaged JSON Schema, the Scenario model."""

from ._loader import is_spec_file, load_scenario
from ._model import (
    AssertionSpec,
    FineTuneSpec,
    Location,
    ModelSpec,
    RecipeSpec,
    RetrievalSpec,
    Scenario,
    SplitSpec,
    TaskSpec,
    VariantSpec,
    metric_key,
)
from ._schema import spec_schema

__all__ = [
    "AssertionSpec",
    "FineTuneSpec",
    "Location",
    "ModelSpec",
    "RecipeSpec",
    "RetrievalSpec",
    "Scenario",
    "SplitSpec",
    "TaskSpec",
    "VariantSpec",
    "is_spec_file",
    "load_scenario",
    "metric_key",
    "spec_schema",
]

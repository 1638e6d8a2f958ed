"""Spec files: safe YAML loading with positions, the packaged JSON Schema, the Scenario model."""

from ._loader import is_spec_file, load_scenario
from ._marker import Lookalike, lookalike
from ._model import (
    AssertionSpec,
    Axis,
    Candidate,
    ConfirmSpec,
    DemosSpec,
    FineTuneSpec,
    Location,
    ModelSpec,
    ProposeSpec,
    RecipeSpec,
    RegressionSpec,
    RetrievalSpec,
    Scenario,
    SearchSpec,
    SplitSpec,
    TaskSpec,
    VariantSpec,
    metric_key,
)
from ._project import Project, load_spec
from ._schema import spec_schema
from ._search import WINNER

__all__ = [
    "Project",
    "load_spec",
    "AssertionSpec",
    "Axis",
    "Candidate",
    "ConfirmSpec",
    "DemosSpec",
    "FineTuneSpec",
    "Location",
    "Lookalike",
    "ModelSpec",
    "ProposeSpec",
    "RecipeSpec",
    "RegressionSpec",
    "RetrievalSpec",
    "Scenario",
    "SearchSpec",
    "SplitSpec",
    "TaskSpec",
    "VariantSpec",
    "WINNER",
    "is_spec_file",
    "load_scenario",
    "lookalike",
    "metric_key",
    "spec_schema",
]

"""llmopt: measurable, gateable LLM optimization, as YAML specs run by pytest.

Importing this package does no work: no I/O, no clients, no heavy imports; the public
names below are resolved on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .hookspecs import hookimpl

__version__ = "0.1.0"

_EXPORTS = {
    "Case": "llmopt.dataset._case",
    "CaseResult": "llmopt.engine.results",
    "MetricValue": "llmopt.engine.results",
    "Usage": "llmopt.provider._usage",
    "VariantResult": "llmopt.engine.results",
    "Metric": "llmopt.metric._base",
    "Sample": "llmopt.metric._base",
    "CaseMetric": "llmopt.metric",
    "case_metric": "llmopt.metric",
    "Provider": "llmopt.provider._base",
    "ProviderType": "llmopt.provider._base",
    "Request": "llmopt.provider._base",
    "Response": "llmopt.provider._base",
    "DatasetError": "llmopt.errors",
    "LLMOptError": "llmopt.errors",
    "MetricError": "llmopt.errors",
    "PluginError": "llmopt.errors",
    "ProviderError": "llmopt.errors",
    "ProviderUnavailable": "llmopt.errors",
    "RenderError": "llmopt.errors",
    "GuardrailError": "llmopt.errors",
    "SpecError": "llmopt.errors",
}

__all__ = ["hookimpl", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmopt' has no attribute {name!r}")
    return getattr(import_module(module), name)

"""The first plugin: llmopt's own metrics and providers, registered like any other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .metric._base import Metric
    from .provider._base import ProviderType
    from .report import ReportFormat
    from .retrieval._base import RetrieverType


@hookimpl
def llmopt_metrics() -> Sequence["Metric"]:
    from .metric import builtin_metrics

    return builtin_metrics()


@hookimpl
def llmopt_provider_types() -> Sequence["ProviderType"]:
    from .provider import builtin_provider_types

    return builtin_provider_types()


@hookimpl
def llmopt_retrievers() -> Sequence["RetrieverType"]:
    from .retrieval import builtin_retriever_types

    return builtin_retriever_types()


@hookimpl
def llmopt_report_formats() -> Sequence["ReportFormat"]:
    from .report import builtin_report_formats

    return builtin_report_formats()

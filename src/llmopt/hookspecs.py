"""Every hook llmopt offers to plugins.

A plugin is a module or object with functions marked ``@llmopt.hookimpl`` whose names
are the hooks below. Built-in metrics and providers are registered through these same
hooks, by the first plugin (``llmopt._builtins``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pluggy

if TYPE_CHECKING:
    from .metric._base import Metric
    from .provider._base import ProviderType
    from .report import ReportFormat
    from .retrieval._base import RetrieverType

hookspec = pluggy.HookspecMarker("llmopt")
hookimpl = pluggy.HookimplMarker("llmopt")


@hookspec
def llmopt_metrics() -> Sequence["Metric"]:
    """Return the metrics this plugin adds.

    Each follows the :class:`llmopt.Metric` protocol: a ``name`` used in specs
    (``metric: <name>``), ``check_args`` for collection-time validation of ``args:``,
    a per-case ``score`` and an ``aggregate``. A metric that must call a model (a
    judge) defines ``async def ascore(sample, args, ctx)`` instead; ``ctx.ask`` calls
    a provider through the response cache and the budget (see
    :class:`llmopt.metric.JudgeContext`). A name registered twice is an error.
    """


@hookspec
def llmopt_provider_types() -> Sequence["ProviderType"]:
    """Return the provider types this plugin adds.

    Each follows the :class:`llmopt.ProviderType` protocol: a ``name`` used in specs
    (``model: {provider: <name>}``), ``check`` for collection-time validation of the
    model section, and ``create`` returning a :class:`llmopt.Provider`.
    """


@hookspec
def llmopt_retrievers() -> Sequence["RetrieverType"]:
    """Return the retriever types this plugin adds.

    Each follows the :class:`llmopt.retrieval.RetrieverType` protocol: a ``name`` used
    in specs (``retrieval: {retriever: <name>}``), ``check`` for collection-time
    validation of the retrieval section, and ``build`` returning a ready index. Every
    registered retriever can be a member of ``hybrid``. An index may also offer
    ``async def asearch(query, top_k)`` (awaited by the runner instead of ``search``).
    """


@hookspec
def llmopt_report_formats() -> Sequence["ReportFormat"]:
    """Return the report formats this plugin adds.

    Each follows the :class:`llmopt.report.ReportFormat` protocol: a ``name`` (a report
    path can name its format: ``--llmopt-report NAME:PATH``, ``llmopt report -o
    NAME:PATH``), the ``suffixes`` that pick it otherwise (``(".csv",)``; the longest
    match wins) and ``write(results, path)``, which writes the report of a results
    document (the results JSON, as a mapping) to ``path``. The built-in ``html``,
    ``markdown``, ``json`` and ``junit`` formats are registered through this hook. A
    name registered twice is an error, and so is a report path whose suffix two formats
    claim (name one instead).
    """

"""The engine: evaluates a scenario's variants into results, usable without pytest.

- ``runner``: evaluates variants (cases concurrently, errors kept per case);
- ``calls``: THE gateway of every model call (cache, replay, budget, bounds,
  redaction, usage);
- ``judging``: the judge metrics' calls, through the gateway;
- ``cache``: the response cache (SQLite, shared by xdist workers);
- ``budget``: the run's spending limit and its shared ledger;
- ``identity``: what a variant's result depends on, for stored baselines;
- ``results``: what an evaluation produces.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Runner": "llmopt.engine.runner",
    "run_sync": "llmopt.engine.runner",
    "ModelCalls": "llmopt.engine.calls",
    "Call": "llmopt.engine.calls",
    "ResponseCache": "llmopt.engine.cache",
    "Budget": "llmopt.engine.budget",
    "CaseResult": "llmopt.engine.results",
    "VariantResult": "llmopt.engine.results",
    "MetricValue": "llmopt.engine.results",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmopt.engine' has no attribute {name!r}")
    return getattr(import_module(module), name)

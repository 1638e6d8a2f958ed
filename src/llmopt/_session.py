"""Per-run state of the pytest plugin, kept in ``config.stash`` (no globals)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .registry import Registry
    from .report import ResultsStore
    from .results import VariantResult
    from .runner import Runner
    from .spec import AssertionSpec, Scenario

SESSION_KEY: "pytest.StashKey[LLMOptSession]"


class LLMOptSession:
    """Registry, runner and results of one pytest run; everything built lazily."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._registry: "Registry | None" = None
        self._runner: "Runner | None" = None
        self._store: "ResultsStore | None" = None
        json_path = config.getoption("llmopt_json", None)
        self.json_path = Path(json_path) if json_path else None
        self.worst: int = config.getoption("llmopt_worst", 3)
        self.skip_unavailable = config.getoption("llmopt_unavailable", "error") == "skip"
        self.cache_mode = _cache_mode(config)
        self.budget_usd: float | None = config.getoption("llmopt_budget", None)
        self._worker_refused = 0

    @property
    def registry(self) -> "Registry":
        if self._registry is None:
            from .registry import create_registry

            plugins = self.config.getini("llmopt_plugins")
            self._registry = create_registry(plugins, rootdir=self.config.rootpath)
        return self._registry

    @property
    def runner(self) -> "Runner":
        if self._runner is None:
            from .runner import Runner

            mode = "on" if self.cache_mode == "off" else self.cache_mode  # off: no cache at all
            self._runner = Runner(self.registry, self._cache(), cache_mode=mode, budget=self._budget())
        return self._runner

    @property
    def store(self) -> "ResultsStore":
        if self._store is None:
            from .report import ResultsStore

            self._store = ResultsStore()
        return self._store

    def _budget(self) -> Any:
        if self.budget_usd is None:
            return None
        from .budget import Budget

        # Each xdist worker gets an equal share, so the run never spends more in total.
        workers = int(getattr(self.config, "workerinput", {}).get("workercount", 1) or 1)
        return Budget(self.budget_usd / workers)

    def refused(self) -> int:
        """Calls this process did not make because the budget was used up."""
        budget = self._runner.budget if self._runner is not None else None
        return budget.refused if budget is not None else 0

    def add_worker_refused(self, refused: int) -> None:
        self._worker_refused += refused

    def budget_exhausted(self) -> bool:
        return self.refused() + self._worker_refused > 0

    def spend_line(self) -> str:
        """The run's spending, for the end of the summary."""
        usage = self.store.usage_total()
        line = f"spent ${usage.cost_usd:.4f} on {usage.calls} calls; {usage.cache_hits} answers from the cache"
        if usage.cached_cost_usd:
            line += f" (saving ${usage.cached_cost_usd:.4f})"
        refused = self.refused() + self._worker_refused
        if self.budget_usd is not None:
            line += f"; budget ${self.budget_usd:.4f}"
            if refused:
                line += f" used up: {refused} calls not made (the run fails)"
        return line

    def _cache(self) -> Any:
        if self.cache_mode == "off":
            return None
        from .cache import ResponseCache

        folder = self.config.getoption("llmopt_cache_dir", None) or self.config.getini("llmopt_cache_dir")
        return ResponseCache(self.config.rootpath / folder)

    def display(self, path: Path) -> str:
        """A path as users see it: relative to the rootdir when possible."""
        try:
            return path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            return str(path)

    def load(self, path: Path) -> "Scenario":
        from .spec import load_scenario

        return load_scenario(path, self.registry, display_path=self.display(path))

    def leak_warnings(self, scenario: "Scenario") -> list[Warning]:
        """A LeakageWarning per variant whose recorded training file
        (``finetune.training_file``) holds evaluation cases."""
        if not any(v.finetune is not None and v.finetune.training_file for v in scenario.variants.values()):
            return []
        from .finetune import LeakageWarning, leak_warnings

        return [LeakageWarning(message) for message in leak_warnings(scenario, self.display)]

    def evaluate(self, scenario: "Scenario", assertion: "AssertionSpec") -> dict[str, "VariantResult"]:
        """The results of every variant an assertion needs, recorded for the reports."""
        names = ([assertion.vs] if assertion.vs else []) + [assertion.variant]
        results = {name: self.runner.evaluate(scenario, name) for name in names}
        for result in results.values():
            self.store.add_variant(self.display(scenario.path), result, order=list(scenario.variants))
        return results

    def record(self, item: Any, report: pytest.TestReport) -> None:
        """Turn an assertion item's report into an outcome of the results JSON."""
        from .results import AssertionOutcome

        if report.when == "call" or (report.when == "setup" and not report.passed):
            a, verdict = item.assertion, item.verdict
            outcome = "error" if report.when == "setup" and report.failed else report.outcome
            message = "" if report.passed else str(report.longrepr)
            result = AssertionOutcome(
                id=item.nodeid,
                scenario=item.scenario.id,
                variant=a.variant,
                metric=a.metric_key,
                outcome=outcome,
                observed=verdict.observed if verdict else None,
                expected=verdict.expected if verdict else item.name,
                delta=verdict.delta if verdict else None,
                vs=a.vs,
                message=message,
            )
            self.store.add_outcome(self.display(item.path), result)
            _add_properties(item, result)

    def finish(self) -> None:
        """Write the reports the options ask for (on the controller only)."""
        if self.json_path is not None and self._store is not None:
            self.store.write(self.json_path)


def _cache_mode(config: pytest.Config) -> str:
    """The cache mode from --llmopt-cache, or off for --llmopt-no-cache."""
    mode = config.getoption("llmopt_cache", None)
    if config.getoption("llmopt_no_cache", False):
        if mode not in (None, "off"):
            raise pytest.UsageError(f"--llmopt-no-cache contradicts --llmopt-cache={mode}")
        return "off"
    return mode or "on"


def _add_properties(item: Any, outcome: Any) -> None:
    for key in ("metric", "observed", "expected", "delta"):
        value = getattr(outcome, key)
        if value is not None:
            item.user_properties.append((f"llmopt_{key}", value))


SESSION_KEY = pytest.StashKey["LLMOptSession"]()

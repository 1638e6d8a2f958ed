"""Per-run state of the pytest plugin, kept in ``config.stash`` (no globals)."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator

import pytest

from .errors import LLMOptError

if TYPE_CHECKING:
    from .assertion import Family
    from .baseline import Baselines, StoredVariant
    from .dataset._shard import Shard
    from .engine.results import VariantResult
    from .engine.runner import Runner
    from .recipe import RecipeBook
    from .registry import Registry
    from .report import ReportTarget, ResultsStore
    from .search import LooksLedger, SearchOutcome
    from .spec import AssertionSpec, Scenario, VariantSpec

SESSION_KEY: "pytest.StashKey[LLMOptSession]"
#: The ``workerinput`` key holding the path of the run's shared budget ledger.
LEDGER_KEY = "llmopt_budget_ledger"
#: The ``workerinput`` key holding the folder of the workers' progress files.
PROGRESS_KEY = "llmopt_progress_dir"
#: The ``workerinput`` key holding the run's id in the batch ledger (shared by the workers).
BATCH_RUN_KEY = "llmopt_batch_run"


class LLMOptSession:
    """Registry, runner and results of one pytest run; everything built lazily."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._registry: "Registry | None" = None
        self._runner: "Runner | None" = None
        self._store: "ResultsStore | None" = None
        self._recipes: "RecipeBook | None" = None
        json_path = config.getoption("llmopt_json", None)
        self.json_path = Path(json_path) if json_path else None
        self.worst: int = config.getoption("llmopt_worst", 3)
        self.skip_unavailable = config.getoption("llmopt_unavailable", "error") == "skip"
        self.cache_mode = _cache_mode(config)
        self.budget_usd: float | None = config.getoption("llmopt_budget", None)
        self.batch = _batch_run(config, self.cache_mode)
        self.update_baseline: bool = bool(config.getoption("llmopt_update_baseline", False))
        #: ``--llmopt-shard K/N``: this run evaluates one shard of the cases and gates nothing.
        self.shard: "Shard | None" = _shard(config, self.json_path, self.update_baseline)
        self.baselines_written: list[Path] = []
        self._baselines: "Baselines | None" = None
        self._searches: dict[tuple[str, str], "SearchOutcome | LLMOptError"] = {}
        self._worker_refused = 0
        self._ledger_dir: Path | None = None
        #: The collector's thresholds raised while this run evaluates (see ``runner``).
        self._collections: ExitStack | None = None
        #: The controller's note for its xdist workers' progress (None: none drawn).
        self.worker_progress: Any = None
        self._progress_decided = False
        self.report_lines: list[str] = []
        self.report_targets = self._report_targets(config.getoption("llmopt_report", None) or [])

    @property
    def registry(self) -> "Registry":
        if self._registry is None:
            from .registry import create_registry

            plugins = self.config.getini("llmopt_plugins")
            self._registry = create_registry(plugins, rootdir=self.config.rootpath)
        return self._registry

    def _report_targets(self, texts: list[str]) -> list["ReportTarget"]:
        """The ``--llmopt-report`` targets, each in a registered format; a UsageError
        naming the known formats when one is unknown."""
        if not texts:
            return []
        from .report import ReportError, report_target

        try:
            return [report_target(text, self.registry.report_formats) for text in texts]
        except ReportError as exc:
            raise pytest.UsageError(f"--llmopt-report {exc}") from None
        except LLMOptError as exc:  # the plugins that register formats did not load
            raise pytest.UsageError(f"--llmopt-report: {exc}") from None

    @property
    def recipes(self) -> "RecipeBook":
        """The recipes folder (``llmopt_recipes``, relative to the rootdir), loaded once."""
        if self._recipes is None:
            from .recipe import load_book

            folder = self.config.rootpath / self.config.getini("llmopt_recipes")
            self._recipes = load_book(folder, self.display)
        return self._recipes

    @property
    def runner(self) -> "Runner":
        if self._runner is None:
            from .engine.runner import Runner, fewer_collections

            if self._collections is None:  # from the first evaluation to the end of the run
                self._collections = ExitStack()
                self._collections.enter_context(fewer_collections())
            mode = "on" if self.cache_mode == "off" else self.cache_mode  # off: no cache at all
            listener = self._progress()
            self._runner = Runner(
                self.registry, self._cache(), cache_mode=mode, budget=self._budget(), listener=listener, shard=self.shard
            )
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
        from .engine.budget import Budget, FileLedger

        # Under pytest-xdist the controller hands every worker one shared ledger.
        shared = getattr(self.config, "workerinput", {}).get(LEDGER_KEY)
        return Budget(self.budget_usd, FileLedger(Path(shared)) if shared else None)

    def ledger_for_workers(self) -> str | None:
        """The shared budget ledger's path (created on first use) for xdist workers."""
        if self.budget_usd is None:
            return None
        if self._ledger_dir is None:
            import tempfile

            from .engine.budget import FileLedger

            self._ledger_dir = Path(tempfile.mkdtemp(prefix="llmopt-budget-"))
            FileLedger(self._ledger_dir / "spend.sqlite", create=True).close()
        return str(self._ledger_dir / "spend.sqlite")

    def release(self) -> None:
        """Let go of every result once the run is over (the reports are written, the
        summary shown), committing the answers the cache holds: the collector passes
        pytest makes as it ends, and the interpreter's own at the exit, then walk a
        small heap. With the 100,000 case results still alive those took 2.6 s more
        (bench/scale.py). The collector's thresholds come back here too: raised from
        the first evaluation on, so the results kept meanwhile (and the cases loaded
        before a variant's first call) are not walked again and again: 0.6 s of a
        100,000-case run."""
        cache = self._runner.cache if self._runner is not None else None
        self._runner, self._store = None, None  # the results go here, before the thresholds come back
        self._searches.clear()
        try:
            if cache is not None:
                cache.close()
        finally:
            if self._collections is not None:
                self._collections.close()
                self._collections = None

    def remove_ledger(self) -> None:
        """Delete the shared budget ledger (the controller, at the end of the run)."""
        if self._ledger_dir is not None:
            import shutil

            shutil.rmtree(self._ledger_dir, ignore_errors=True)
            self._ledger_dir = None

    def _progress_mode(self) -> str:
        return self.config.getoption("llmopt_progress", None) or "off"

    def _progress(self) -> Any:
        from .report import ProgressFile, terminal_progress

        workerinput = getattr(self.config, "workerinput", {})
        folder = workerinput.get(PROGRESS_KEY)
        if folder:  # an xdist worker: the controller draws what it writes
            return ProgressFile(Path(folder) / f"{workerinput.get('workerid', 'gw')}.json")
        return terminal_progress(self.config, self._progress_mode())

    def progress_for_workers(self) -> str | None:
        """The folder of the workers' progress files (made, and its reader started, on
        first use), or None when the controller's terminal shows no progress."""
        if not self._progress_decided:
            from .report import worker_progress

            self._progress_decided = True
            self.worker_progress = worker_progress(self.config, self._progress_mode())
            if self.worker_progress is not None:
                self.worker_progress.start()
                self.config.pluginmanager.register(_QuietProgress(self.worker_progress), "llmopt-worker-progress")
        return str(self.worker_progress.folder) if self.worker_progress is not None else None

    def stop_worker_progress(self) -> None:
        """Stop drawing the workers' progress and clear the note (before the summary)."""
        if self.worker_progress is not None:
            self.worker_progress.stop()

    def remove_progress_dir(self) -> None:
        if self.worker_progress is not None:
            import shutil

            self.worker_progress.stop()
            shutil.rmtree(self.worker_progress.folder, ignore_errors=True)

    def refused(self) -> int:
        """Calls this process did not make because the budget was used up."""
        budget = self._runner.budget if self._runner is not None else None
        return budget.refused if budget is not None else 0

    def add_worker_refused(self, refused: int) -> None:
        self._worker_refused += refused

    def budget_exhausted(self) -> bool:
        return self.refused() + self._worker_refused > 0

    def batch_skip(self, item: Any) -> str | None:
        """Batch mode: run the batch phase (once, at the first item); the reason this
        item is skipped while its batches are pending (``--llmopt-batch=submit``)."""
        if self.batch is None:
            return None
        note = self._batch_note()
        return self.batch.skip_reason(item, self.runner, note)

    def _batch_note(self) -> Any:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or hasattr(self.config, "workerinput"):
            return lambda line: None
        return lambda line: reporter.write_line(line)

    def spend_line(self) -> str:
        """The run's spending, for the end of the summary."""
        usage = self.store.usage_total()
        batched = f" ({usage.batch_calls} through batch APIs)" if usage.batch_calls else ""
        line = f"spent ${usage.cost_usd:.4f} on {usage.calls} calls{batched}; {usage.cache_hits} answers from the cache"
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
        from .engine.cache import ResponseCache

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

        return load_scenario(path, self.registry, display_path=self.display(path), recipes=self.recipes)

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
        results = {name: self.evaluate_variant(scenario, name) for name in names}
        for result in results.values():
            self.store.add_variant(self.display(scenario.path), result, order=list(scenario.variants))
        return results

    def evaluate_variant(self, scenario: "Scenario", name: str) -> "VariantResult":
        """One variant's result; variant ``search`` is the search's winner (the search
        runs first, once)."""
        from .spec import WINNER

        spec = self.winner(scenario) if name == WINNER and scenario.search is not None else None
        return self.runner.evaluate(scenario, name, spec)

    def search(self, scenario: "Scenario") -> "SearchOutcome":
        """The scenario's search (run once; a failure is remembered and raised again)."""
        key = (str(scenario.path), scenario.id)
        if key not in self._searches:
            from .search import run_search

            try:
                outcome = run_search(self.runner, scenario)
            except LLMOptError as exc:
                self._searches[key] = exc
            else:
                self._searches[key] = outcome
                self.store.add_search(self.display(scenario.path), scenario.id, outcome.to_json())
        found = self._searches[key]
        if isinstance(found, LLMOptError):
            raise found
        return found

    def winner(self, scenario: "Scenario") -> "VariantSpec":
        """The search's winner as variant ``search``; an error when there is none."""
        from .search import winner_variant

        outcome = self.search(scenario)
        variant = winner_variant(outcome)
        if variant is None:
            raise LLMOptError(f"the search of {scenario.id!r} found no winner: {outcome.error or 'no candidate'}")
        return variant

    @property
    def looks(self) -> "LooksLedger":
        """The ledger of confirmations, in the response cache's folder."""
        from .search import LooksLedger

        folder = self.config.getoption("llmopt_cache_dir", None) or self.config.getini("llmopt_cache_dir")
        return LooksLedger(self.config.rootpath / folder / "looks.sqlite")

    def family(self, scenario: "Scenario", assertion: "AssertionSpec") -> "Family | None":
        """Holm's family of a confident delta assertion, else None (see assertion.py)."""
        from .assertion import holm_family

        return holm_family(scenario, assertion, self.registry.metrics, lambda v: self.evaluate_variant(scenario, v))

    def stored(self, scenario: "Scenario", assertion: "AssertionSpec", result: "VariantResult") -> "StoredVariant":
        """The stored baseline a regression assertion compares with (see baseline.py)."""
        if self._baselines is None:
            from .baseline import Baselines

            self._baselines = Baselines(self.display, self.update_baseline)
        return self._baselines.stored(scenario, assertion, result)

    def record(self, item: Any, report: pytest.TestReport) -> None:
        """Turn an assertion item's report into an outcome of the results JSON."""
        from .engine.results import AssertionOutcome

        if report.when == "call" or (report.when == "setup" and not report.passed):
            a, verdict = item.assertion, item.verdict
            outcome = "error" if report.when == "setup" and report.failed else report.outcome
            message = "" if report.passed else _longrepr_text(report)
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
                stats=verdict.stats_json() if verdict else {"kind": a.kind, "confidence": a.gate_confidence},
            )
            self.store.add_outcome(self.display(item.path), result)
            if a.role == "confirmation":
                self._record_confirmation(item, result.to_json())
            from .report import asked_limits, junit_properties

            item.user_properties.extend(junit_properties(result.to_json(), asked_limits(a)))

    def _look_key(self, scenario: "Scenario") -> tuple[str, str]:
        """(test-split fingerprint, winner key) of a scenario's confirmation."""
        from .dataset import load_cases
        from .search import confirmation_key, split_fingerprint

        assert scenario.search is not None
        vs = scenario.variants[scenario.search.confirm.vs]
        test = load_cases(vs.task, scenario.path)
        return split_fingerprint(test), confirmation_key(self.search(scenario), scenario.search.confirm.vs)

    def refuse_stale_look(self, scenario: "Scenario") -> None:
        """``confirm.fresh``: an error before anything reads test when another winner
        was confirmed on this test split already."""
        self.winner(scenario)
        if scenario.search is not None and scenario.search.confirm.fresh:
            split, winner = self._look_key(scenario)
            self.looks.refuse_stale(scenario.id, split, winner)

    def _record_confirmation(self, item: Any, outcome: dict[str, Any]) -> None:
        """Count the look on the test split and put the confirmation in the search's results."""
        from .search import confirmation_json

        scenario = item.scenario
        look = None
        if item.verdict is not None:
            split, winner = self._look_key(scenario)
            look = self.looks.record(scenario.id, split, winner)
        doc = confirmation_json(scenario.search, outcome, look, len(scenario.search.candidates))
        self.store.set_confirmation(self.display(scenario.path), scenario.id, doc)

    def finish(self) -> None:
        """Write the reports the options ask for (on the controller only)."""
        if self.json_path is not None and self._store is not None:
            self.store.write(self.json_path, self._shard_doc())
        if self.update_baseline and self._store is not None:
            from .baseline import write_baselines

            self.baselines_written = write_baselines(self.store.to_doc(), self.config.rootpath)
        if self._store is not None and (self.report_targets or os.environ.get("GITHUB_STEP_SUMMARY")):
            from .report import write_reports

            self.report_lines = write_reports(self.store.to_doc(), self.report_targets)

    def _shard_doc(self) -> dict[str, Any] | None:
        """The results document of a shard (with its fingerprints); None for a whole run."""
        if self.shard is None:
            return None
        from .merge import shard_doc

        return shard_doc(self.store.to_doc(), self.shard, self.config.rootpath)

    def shard_line(self) -> str | None:
        """The summary's note on a shard run (None for a whole run)."""
        if self.shard is None:
            return None
        return (
            f"shard {self.shard}: assertions are gated after merge: "
            f"llmopt merge <the {self.shard.n} shards' results JSON> -o results.json"
        )


def _shard(config: pytest.Config, json_path: Path | None, update_baseline: bool) -> "Shard | None":
    """The shard of ``--llmopt-shard K/N``; a UsageError when it is malformed or the
    run could not be merged (no results JSON, a baseline written from part of the cases)."""
    text = config.getoption("llmopt_shard", None)
    if text is None:
        return None
    from .dataset._shard import ShardError, parse_shard

    try:
        shard = parse_shard(text)
    except ShardError as exc:
        raise pytest.UsageError(f"--llmopt-shard {exc}") from None
    if json_path is None:
        raise pytest.UsageError("--llmopt-shard needs --llmopt-json PATH: llmopt merge reads each shard's results JSON")
    if update_baseline:
        raise pytest.UsageError("--llmopt-shard cannot --llmopt-update-baseline from part of the cases: run it unsharded")
    return shard


def _batch_run(config: pytest.Config, cache_mode: str) -> Any:
    """The run's batch phase: for ``--llmopt-batch``, or for ``model.batch: true``
    (found when the phase looks at the selected items); None when the cache is off."""
    from ._batching import BatchRun, batch_mode

    mode = batch_mode(config, cache_mode)
    if cache_mode in ("off", "replay"):
        return None
    run_id = getattr(config, "workerinput", {}).get(BATCH_RUN_KEY)
    return BatchRun(mode, run_id, float(config.getini("llmopt_batch_poll")))


def _cache_mode(config: pytest.Config) -> str:
    """The cache mode from --llmopt-cache, or off for --llmopt-no-cache."""
    mode = config.getoption("llmopt_cache", None)
    if config.getoption("llmopt_no_cache", False):
        if mode not in (None, "off"):
            raise pytest.UsageError(f"--llmopt-no-cache contradicts --llmopt-cache={mode}")
        return "off"
    return mode or "on"


def _longrepr_text(report: pytest.TestReport) -> str:
    """A report's message; a skip's (path, line, reason) tuple becomes its reason."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


SESSION_KEY = pytest.StashKey["LLMOptSession"]()


class _QuietProgress:
    """Clears the workers' progress note around every hook that writes a test's
    progress to the terminal, and keeps it away until the writing is done."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logstart(self) -> Generator[None, Any, Any]:
        with self.progress.quiet():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self) -> Generator[None, Any, Any]:
        with self.progress.quiet():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logfinish(self) -> Generator[None, Any, Any]:
        with self.progress.quiet():
            return (yield)

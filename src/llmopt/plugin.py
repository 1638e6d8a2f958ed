"""The pytest plugin: spec files become collectors, assertions become items.

A thin layer over the engine (:mod:`llmopt.engine.runner`): options, collection, the item
phases (evaluate in setup, check in call), and the summary. Importing it is cheap:
everything heavy is imported when the first spec is collected.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator, Iterable

import pytest

from ._session import BATCH_RUN_KEY, LEDGER_KEY, PROGRESS_KEY, SESSION_KEY, LLMOptSession
from ._watchdog import watch_controller
from .errors import LLMOptError

if TYPE_CHECKING:
    from .assertion import Verdict
    from .spec import AssertionSpec, Scenario


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmopt", "llmopt: LLM optimization specs")
    group.addoption("--llmopt-json", metavar="PATH", help="write the run's results JSON to PATH")
    group.addoption("--llmopt-no-cache", action="store_true", help="neither read nor write the response cache")
    group.addoption(
        "--llmopt-cache",
        choices=("on", "off", "replay", "refresh"),
        default=None,
        help="cache mode: on (default), off, replay (answers only from the cache; a miss is an error), "
        "refresh (call again and overwrite)",
    )
    group.addoption(
        "--llmopt-budget", type=float, metavar="USD", help="stop making provider calls once the run has spent USD"
    )
    group.addoption(
        "--llmopt-unavailable",
        choices=("error", "skip"),
        default="error",
        help="what an unavailable provider (missing key or runtime) makes of its items: error (default) or skip",
    )
    group.addoption("--llmopt-cache-dir", metavar="DIR", help="response cache folder (default: llmopt_cache_dir)")
    group.addoption("--llmopt-worst", type=int, default=3, metavar="N", help="worst cases shown per failure (3)")
    group.addoption(
        "--llmopt-update-baseline",
        action="store_true",
        help="write baselines/<scenario>.json beside each spec from this run (for regression assertions)",
    )
    group.addoption(
        "--llmopt-report",
        action="append",
        default=[],
        metavar="[FORMAT:]PATH",
        help="write a report; the suffix picks the format: .html (self-contained page), .md (summary), .json, "
        ".xml (JUnit), or a plugin's; FORMAT: names one (repeatable)",
    )
    group.addoption(
        "--llmopt-progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="live progress of each variant's evaluation (under -n, one line for all workers): auto (on a terminal), on, off",
    )
    group.addoption(
        "--llmopt-shard",
        metavar="K/N",
        help="evaluate only the cases whose id hashes to shard K of N (1 <= K <= N), write them with --llmopt-json "
        "and leave the verdicts to `llmopt merge` (assertion items are skipped: gated after merge)",
    )
    # Three exact spellings rather than an optional value: ``--llmopt-batch specs/``
    # must not read ``specs/`` as the option's value (argparse matches a whole
    # registered option string before it splits at "=").
    group.addoption(
        "--llmopt-batch",
        "--llmopt-batch=on",
        dest="llmopt_batch",
        action="store_const",
        const="on",
        default=None,
        help="send the requests of openai and anthropic models through their batch APIs (half price) before the "
        "items run, and wait for them",
    )
    group.addoption(
        "--llmopt-batch=submit",
        dest="llmopt_batch",
        action="store_const",
        const="submit",
        help="submit the batches and skip the items (a later --llmopt-batch run collects the answers)",
    )
    parser.addini("llmopt_batch_poll", "seconds before the first poll of a batch (then backing off)", default="1.0")
    parser.addini("llmopt_plugins", "project-local llmopt plugin modules (e.g. plugins.brand)", type="linelist")
    parser.addini("llmopt_cache_dir", "response cache folder, relative to the rootdir", default=".llmopt/cache")
    parser.addini("llmopt_recipes", "recipes folder, relative to the rootdir", default="recipes")


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, Any, Any]:
    # With -n and no --dist choice, keep each spec file (one scenario) on one worker,
    # so every variant is evaluated once. "loadfile" rather than "loadgroup": the
    # xdist_group suffix that loadgroup relies on is lost on pytest >= 9.2.
    option = config.option
    if getattr(option, "numprocesses", None) and getattr(option, "dist", None) == "no":
        option.dist = "loadfile"
    return (yield)


#: The options that take a path: in the ``--opt PATH`` form pytest reads PATH as a test
#: path while it picks the rootdir, before these options exist.
PATH_OPTIONS = ("--llmopt-json", "--llmopt-report", "--llmopt-cache-dir")


def pytest_configure(config: pytest.Config) -> None:
    check_path_options(config)
    config.stash[SESSION_KEY] = LLMOptSession(config)
    watch_controller(config)  # an xdist worker stops when its controller is gone


def check_path_options(config: pytest.Config) -> None:
    """A UsageError naming the ``--opt=PATH`` form when a path option written as
    ``--opt PATH`` moved pytest's rootdir or ini file (pytest chose them treating PATH as
    a test path): the run would use another project's cache, plugins and recipes."""
    if hasattr(config, "workerinput"):
        return  # the controller checked
    import os
    import shlex

    args = shlex.split(os.environ.get("PYTEST_ADDOPTS", "")) + [str(a) for a in config.invocation_params.args]
    spaced = [(args[i], args[i + 1]) for i in range(len(args) - 1) if args[i] in PATH_OPTIONS]
    if not spaced or not _setup_moved(config):
        return
    option, value = spaced[0]
    raise pytest.UsageError(
        f"{option} {value}: pytest took {value!r} for a test path while choosing the rootdir (before llmopt's "
        f"options are known), which moved the rootdir to {config.rootpath}: write {option}={value}"
    )


def _setup_moved(config: pytest.Config) -> bool:
    """Whether the rootdir or ini file differs from what the parsed test paths give."""
    try:
        from _pytest.config.findpaths import determine_setup

        rootpath, inipath, *_ = determine_setup(
            inifile=config.option.inifilename,
            override_ini=config.option.override_ini,
            args=[str(a) for a in (config.option.file_or_dir or [])],
            rootdir_cmd_arg=config.option.rootdir or None,
            invocation_dir=config.invocation_params.dir,
        )
    except Exception:  # pytest's private API changed: cannot tell, do not stop the run
        return False
    return rootpath != config.rootpath or inipath != config.inipath


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    from .spec import is_spec_file

    if not is_spec_file(file_path):
        from ._collect import warn_lookalike

        warn_lookalike(file_path, parent.config, parent.config.stash[SESSION_KEY].display(file_path))
        return None
    return SpecFile.from_parent(parent, path=file_path)


def _state(node: pytest.Item | pytest.Collector) -> LLMOptSession:
    return node.config.stash[SESSION_KEY]


class SpecFile(pytest.File):
    """A YAML spec file; collects its scenario."""

    def collect(self) -> Iterable[pytest.Collector]:
        try:
            scenario = _state(self).load(self.path)
        except LLMOptError as exc:
            raise self.CollectError(str(exc)) from None
        for warning in _state(self).leak_warnings(scenario):
            self.warn(warning)
        for warning in _gate_warnings(self, scenario):
            self.warn(warning)
        for warning in _unpriced_warnings(self, scenario):
            self.warn(warning)
        from ._collect import unevaluated_variants

        for variant_warning, filename, line in unevaluated_variants(scenario, self.config):
            warnings.warn_explicit(variant_warning, type(variant_warning), filename, line or 1)
        yield ScenarioNode.from_parent(self, name=scenario.id, scenario=scenario)


def _unpriced_warnings(node: pytest.Collector, scenario: "Scenario") -> list[Warning]:
    """Under --llmopt-budget, a BudgetWarning per hosted model whose price is unknown."""
    from ._collect import unpriced_warnings

    state = _state(node)
    return unpriced_warnings(scenario, state.registry, state.budget_usd)


def _gate_warnings(node: pytest.Collector, scenario: "Scenario") -> list[Warning]:
    """A GateWarning per confident margin gate that cannot pass at its n."""
    from .assertion import GateWarning, gate_warnings

    return [GateWarning(message) for message in gate_warnings(scenario, _state(node).registry.metrics)]


class ScenarioNode(pytest.Collector):
    """One scenario; collects one node per variant that has assertions."""

    def __init__(self, *, scenario: "Scenario", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def collect(self) -> Iterable[pytest.Collector]:
        for name in self.scenario.variants:
            if any(a.variant == name for a in self.scenario.assertions):
                yield VariantNode.from_parent(self, name=name, scenario=self.scenario)


class VariantNode(pytest.Collector):
    """One variant; collects one item per assertion on it."""

    def __init__(self, *, scenario: "Scenario", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def collect(self) -> Iterable[pytest.Item]:
        from .assertion import variant_items

        if self.scenario.search is not None and self.name == "search":
            search = SearchItem.from_parent(self, name="search", scenario=self.scenario)
            search.add_marker(pytest.mark.xdist_group(name=self.scenario.id))
            yield search
        for a, name in variant_items(self.scenario.assertions, self.name):
            item = AssertionItem.from_parent(self, name=name, scenario=self.scenario, assertion=a)
            item.add_marker(pytest.mark.xdist_group(name=self.scenario.id))
            yield item


class SearchItem(pytest.Item):
    """A scenario's search on dev: passes when it found a winner (the leaderboard goes
    to the summary); an error when it could not run."""

    def __init__(self, *, scenario: "Scenario", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def setup(self) -> None:
        if _state(self).shard is not None:
            pytest.skip(UNSHARDED)
        _state(self).winner(self.scenario)

    def runtest(self) -> None:
        outcome = _state(self).search(self.scenario)
        if outcome.stopped:
            self.user_properties.append(("llmopt_search_stopped", outcome.stopped))
            warnings.warn_explicit(SearchStopped(outcome.stopped), SearchStopped, str(self.path), self._line() or 1)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LLMOptError):
            return f"{self._where()}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def _line(self) -> int | None:
        search = self.scenario.search
        return search.location.line if search is not None and search.location is not None else None

    def _where(self) -> str:
        search = self.scenario.search
        return str(search.location) if search is not None and search.location else self.path.name

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self._line()
        return self.path, line - 1 if line else None, f"{self.scenario.id} search"


#: Why a search and the assertions on its winner do not run in a shard.
UNSHARDED = "a search runs unsharded: it selects on every dev case and confirms on every test case"


class SearchStopped(UserWarning):
    """The search's budget stopped it before the end: the winner is the best so far."""


class AssertionFailed(AssertionError):
    """An assertion's metric missed its threshold or delta."""

    def __init__(self, verdict: "Verdict") -> None:
        super().__init__("assertion failed")
        self.verdict = verdict


class AssertionItem(pytest.Item):
    """One assertion on one variant: evaluates in setup, checks in call."""

    def __init__(self, *, scenario: "Scenario", assertion: "AssertionSpec", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.assertion = assertion
        self.verdict: "Verdict | None" = None
        self.results: dict[str, Any] = {}
        self.stored: Any = None

    def setup(self) -> None:
        from .assertion import check_comparable, check_errors
        from .errors import ProviderUnavailable

        state = _state(self)
        on_winner = "search" in (self.assertion.variant, self.assertion.vs)
        if state.shard is not None and self.scenario.search is not None and on_winner:
            pytest.skip(UNSHARDED)
        if self.assertion.role == "confirmation":
            state.refuse_stale_look(self.scenario)
        waiting = state.batch_skip(self)
        if waiting is not None:
            pytest.skip(f"{self._where()}: {waiting}")
        try:
            self.results = state.evaluate(self.scenario, self.assertion)
        except ProviderUnavailable as exc:
            if state.skip_unavailable:
                pytest.skip(f"{self._where()}: {exc}")
            raise
        if state.shard is not None:
            from .merge import GATED

            pytest.skip(GATED)
        check_errors(self.assertion, list(self.results.values()))
        check_comparable(self.assertion, self.results)
        if self.assertion.regression is not None:
            self.stored = state.stored(self.scenario, self.assertion, self.results[self.assertion.variant])

    def runtest(self) -> None:
        from .assertion import check

        state = _state(self)
        metric = state.registry.metrics[self.assertion.metric]
        family = state.family(self.scenario, self.assertion)
        self.verdict = check(self.assertion, metric, self.results, worst=state.worst, family=family, stored=self.stored)
        if not self.verdict.passed:
            raise AssertionFailed(self.verdict)

    def teardown(self) -> None:
        # The verdict and the report are made: the variants' results stay with the
        # session's store only, which lets go of them at the end of the run.
        self.results, self.stored = {}, None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from .report import failure_text

        if isinstance(excinfo.value, AssertionFailed):
            return failure_text(self.assertion, excinfo.value.verdict, self._where())
        if isinstance(excinfo.value, LLMOptError):
            return f"{self._where()}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def _where(self) -> str:
        loc = self.assertion.location
        return str(loc) if loc else self.path.name

    def reportinfo(self) -> tuple[Path, int | None, str]:
        loc = self.assertion.location
        line = loc.line - 1 if loc and loc.line else None
        # Not the node id's own tail: pytest would turn every "." of it into "::".
        return self.path, line, f"{self.scenario.id} {self.assertion.variant} {self.name}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if isinstance(item, (AssertionItem, SearchItem)):
        excinfo = call.excinfo
        if report.when == "setup" and excinfo is not None and isinstance(excinfo.value, LLMOptError):
            # pytest shows setup errors with a traceback; a user's problem needs none.
            report.longrepr = f"{item._where()}: {excinfo.value}"
    if isinstance(item, AssertionItem):
        _state(item).record(item, report)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["llmopt"] = json.dumps(state.store.to_worker_doc(), default=str)
        workeroutput["llmopt_refused"] = state.refused()
        return
    state.stop_worker_progress()
    state.finish()
    if state.budget_exhausted() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Give each xdist worker the run's shared budget ledger and a progress file."""
    state = node.config.stash[SESSION_KEY]
    ledger = state.ledger_for_workers()
    if ledger is not None:
        node.workerinput[LEDGER_KEY] = ledger
    progress = state.progress_for_workers()
    if progress is not None:
        node.workerinput[PROGRESS_KEY] = progress
    if state.batch is not None:
        node.workerinput[BATCH_RUN_KEY] = state.batch.run_id


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.remove_ledger()
        state.remove_progress_dir()
        state.release()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    output = getattr(node, "workeroutput", None) or {}
    state = node.config.stash[SESSION_KEY]
    if "llmopt" in output:
        state.store.merge(json.loads(output["llmopt"]))
    state.add_worker_refused(int(output.get("llmopt_refused", 0)))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from ._collect import skipped_line, unevaluated_line

    if not hasattr(config, "workerinput"):
        for line in (skipped_line(config), unevaluated_line(config)):
            if line is not None:
                terminalreporter.write_line(line)
    state = config.stash.get(SESSION_KEY, None)
    if state is None or not state.store or hasattr(config, "workerinput"):
        return
    from .report import summary_lines

    terminalreporter.write_sep("=", "llmopt summary")
    for line in summary_lines(state.store.to_doc()):
        terminalreporter.write_line(line)
    terminalreporter.write_line(state.spend_line())
    for path in state.baselines_written:
        terminalreporter.write_line(f"baseline written: {state.display(path)}")
    if state.json_path is not None:
        terminalreporter.write_line(f"results JSON: {state.json_path}")
    shard = state.shard_line()
    if shard is not None:
        terminalreporter.write_line(shard)
    for line in state.report_lines:
        terminalreporter.write_line(line)

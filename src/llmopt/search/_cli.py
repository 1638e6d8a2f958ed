"""``llmopt search SPEC [--write]``: a spec's search outside pytest, with its one
confirmation on test, and the winner written into the spec as variant ``optimized``."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import LLMOptError

if TYPE_CHECKING:
    from ..engine.results import CaseResult, VariantResult
    from ..engine.runner import Runner
    from ..report import ResultsStore
    from ..spec import Scenario
    from ..spec._project import Project
    from ._outcome import SearchOutcome

#: The variant ``--write`` adds to the spec.
WRITTEN = "optimized"


def add_search_command(sub: Any) -> None:
    """``llmopt search``."""
    parser = sub.add_parser("search", help="run a spec's optimization search on dev and confirm the winner on test")
    parser.add_argument("spec", type=Path, help="the spec with a search section")
    parser.add_argument("--write", action="store_true",
                        help=f"add the winner to the spec's variants as {WRITTEN!r} (its overrides, with a comment "
                        "recording the search), with the confirmation as an assertion")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="plugin module (repeatable)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the response cache")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results JSON to PATH")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """0 when the winner is confirmed, 1 when the confirmation fails, 2 on errors."""
    try:
        return _run(args)
    except LLMOptError as exc:
        print(f"llmopt search: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from ..engine.runner import Runner
    from ..report import ResultsStore, summary_lines
    from ..spec._project import Project
    from . import run_search

    project = Project.of(args.spec)
    scenario = _load(args.spec, project, args.plugin)
    registry = project.registry(args.plugin)
    assert scenario.search is not None
    names = {c.name for c in scenario.search.candidates}
    progress = SearchProgress(scenario.search.metric_key, names, sys.stderr)
    runner = Runner(registry, None if args.no_cache else _cache(project), listener=progress)
    outcome = run_search(runner, scenario)
    progress.close()
    store = ResultsStore()
    shown = _shown(args.spec)
    store.add_search(shown, scenario.id, outcome.to_json())
    confirmed = _confirm(runner, scenario, outcome, store, shown, project) if outcome.winner is not None else None
    for line in summary_lines(store.to_doc()):
        print(line)
    if args.json is not None:
        store.write(args.json)
    if outcome.winner is None:
        print(f"llmopt search: no winner: {outcome.error}", file=sys.stderr)
        return 2
    if args.write:
        _write(args.spec, scenario, outcome, store.to_doc())
    return 0 if confirmed else 1


def _load(path: Path, project: "Project", plugins: list[str]) -> "Scenario":
    from ..spec import load_spec

    scenario = load_spec(path, plugins, _shown)
    if scenario.search is None:
        raise LLMOptError(f"{_shown(path)}: the spec has no search section")
    return scenario


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _cache(project: "Project") -> Any:
    from ..engine.cache import ResponseCache

    return ResponseCache(project.root / str(project.settings.get("llmopt_cache_dir") or ".llmopt/cache"))


def _confirm(
    runner: "Runner", scenario: "Scenario", outcome: "SearchOutcome", store: "ResultsStore", shown: str,
    project: "Project",
) -> bool:
    """The one confirmation on test, counted in the looks ledger; True when it passes."""
    from ..assertion import check, check_comparable, check_errors
    from ..dataset import load_cases
    from . import LooksLedger, confirmation_json, confirmation_key, split_fingerprint, winner_variant

    assert scenario.search is not None
    a = next(x for x in scenario.assertions if x.role == "confirmation")
    cache_dir = project.root / str(project.settings.get("llmopt_cache_dir") or ".llmopt/cache")
    ledger = LooksLedger(cache_dir / "looks.sqlite")
    vs = a.vs or ""
    split = split_fingerprint(load_cases(scenario.variants[vs].task, scenario.path))
    key = confirmation_key(outcome, vs)
    if scenario.search.confirm.fresh:
        ledger.refuse_stale(scenario.id, split, key)
    results: dict[str, "VariantResult"] = {vs: runner.evaluate(scenario, vs), "search": runner.evaluate(
        scenario, "search", winner_variant(outcome))}
    for result in results.values():
        store.add_variant(shown, result, order=list(scenario.variants))
    check_errors(a, list(results.values()))
    check_comparable(a, results)
    verdict = check(a, runner.registry.metrics[a.metric], results)
    look = ledger.record(scenario.id, split, key)
    stats = {"observed": verdict.observed, "delta": verdict.delta, "outcome": "passed" if verdict.passed else "failed",
             **verdict.stats_json()}
    store.set_confirmation(shown, scenario.id, confirmation_json(scenario.search, stats, look, len(scenario.search.candidates)))
    return bool(verdict.passed)


def _write(path: Path, scenario: "Scenario", outcome: "SearchOutcome", doc: dict[str, Any]) -> None:
    from ._write import write_winner

    assert scenario.search is not None and outcome.winner is not None
    search = scenario.search
    entry = next(s for s in doc["scenarios"] if s["scenario"] == scenario.id)["search"]
    confirmation = entry.get("confirmation") or {}
    direction = "maximized" if outcome.higher_is_better else "minimized"
    splits = entry["splits"]
    today = datetime.date.today().isoformat()
    comment = [
        f"written by llmopt search {today}: candidate {outcome.winner.name} of {len(search.candidates)} "
        f"({search.strategy}), objective {search.metric_key} ({direction})",
        f"dev n={splits['dev']['n']}, test n={splits['test']['n']}; confirmed vs {search.confirm.vs}: "
        f"{_confirmation_text(confirmation)}",
    ]
    assertion = {"metric": search.metric, "variant": WRITTEN, "vs": search.confirm.vs,
                 "min_delta": search.confirm.min_delta, "confidence": search.confirm.confidence}
    if search.args:
        assertion = {"metric": search.metric, "args": dict(search.args), **{k: v for k, v in assertion.items() if k != "metric"}}
    write_winner(path, name=WRITTEN, overrides=outcome.winner.candidate.overrides, comment=comment, assertion=assertion)
    print(f"wrote variant {WRITTEN!r} and its assertion into {_shown(path)}")


def _confirmation_text(c: dict[str, Any]) -> str:
    delta, ci, p = c.get("delta"), c.get("ci"), c.get("p")
    if delta is None:
        return "not run"
    interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    shown_p = f" p={p:.3g}" if isinstance(p, (int, float)) else ""
    return f"{delta:+.3f}{interval}{shown_p} {c.get('outcome')} (look {c.get('looks')})"


class SearchProgress:
    """A progress line on a terminal (a line per candidate otherwise): candidates done,
    calls, spend, and the best so far by the objective's running mean."""

    def __init__(self, key: str, names: set[str], stream: TextIO) -> None:
        self.key = key
        self.names = names
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.current = ""
        self.done = 0
        self.total = 0
        self.candidates: list[str] = []
        self.calls = 0
        self.cost = 0.0
        self.scores: dict[str, list[float]] = {}

    def started(self, scenario: str, variant: str, total: int) -> None:
        self.current, self.done, self.total = variant, 0, total
        if variant in self.names and variant not in self.candidates:
            self.candidates.append(variant)

    def case_done(self, result: "CaseResult") -> None:
        self.done += 1
        self.calls += result.usage.calls
        self.cost += result.usage.cost_usd
        if result.error is None and self.key in result.scores and self.current in self.names:
            self.scores.setdefault(self.current, []).append(result.scores[self.key])
        if self.tty:
            self._draw("\r")

    def finished(self) -> None:
        self._draw("\r" if self.tty else "")
        if not self.tty:
            self.stream.write("\n")

    def _draw(self, start: str) -> None:
        means = {name: sum(v) / len(v) for name, v in self.scores.items() if v}
        best = max(means, key=lambda name: means[name], default=None)
        best_text = f" · best so far {best} {means[best]:.3f}" if best is not None else ""
        done = f"{len(self.candidates)}/{len(self.names)} candidates"
        line = (f"{start}search: {done} · {self.current} {self.done}/{self.total} cases · "
                f"{self.calls} calls · ${self.cost:.4f}{best_text}")
        self.stream.write(line.ljust(100) if self.tty else line)
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")

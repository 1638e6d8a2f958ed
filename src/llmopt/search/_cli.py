"""``llmopt search SPEC [--write]``: a spec's search outside pytest, with its one
confirmation on test, and the winner written into the spec as variant ``optimized``."""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TextIO

from ..errors import LLMOptError

if TYPE_CHECKING:
    from ..engine.results import CaseResult, VariantResult
    from ..engine.runner import Runner
    from ..recipe import RecipeVersion
    from ..report import ResultsStore
    from ..spec import Scenario, SearchSpec
    from ..spec._model import RecipeSpec
    from ..spec._project import Project
    from ._outcome import Generated, SearchOutcome

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
    """The winner as variant ``optimized`` with its assertion; a generated winner of a
    recipe file's recipe first as that file's next version, which the variant uses."""
    from ._write import write_winner

    assert scenario.search is not None and outcome.winner is not None
    entry = next(s for s in doc["scenarios"] if s["scenario"] == scenario.id)["search"]
    comment, assertion = _comment(scenario.search, outcome, entry), _assertion(scenario.search)
    written = _generated_part(path, scenario, outcome, entry)
    try:
        write_winner(path, name=WRITTEN, overrides=written.overrides, comment=comment + written.comment,
                     assertion=assertion)
    except BaseException:
        written.undo()
        raise
    print(f"wrote variant {WRITTEN!r} and its assertion into {_shown(path)}")
    for line in written.printed:
        print(line)


def _comment(search: "SearchSpec", outcome: "SearchOutcome", entry: dict[str, Any]) -> list[str]:
    """The lines above the written variant: the search and its confirmation."""
    assert outcome.winner is not None
    direction = "maximized" if outcome.higher_is_better else "minimized"
    splits = entry["splits"]
    today = datetime.date.today().isoformat()
    return [
        f"written by llmopt search {today}: candidate {outcome.winner.name} of {len(search.candidates)} "
        f"({search.strategy}), objective {search.metric_key} ({direction})",
        f"dev n={splits['dev']['n']}, test n={splits['test']['n']}; confirmed vs {search.confirm.vs}: "
        f"{_confirmation_text(entry.get('confirmation') or {})}",
    ]


def _assertion(search: "SearchSpec") -> dict[str, Any]:
    """The confirmation as an assertion on the written variant."""
    assertion = {"metric": search.metric, "variant": WRITTEN, "vs": search.confirm.vs,
                 "min_delta": search.confirm.min_delta, "confidence": search.confirm.confidence}
    if search.args:
        assertion = {"metric": search.metric, "args": dict(search.args), **{k: v for k, v in assertion.items() if k != "metric"}}
    return assertion


@dataclass
class _Written:
    """The winner's overrides as the spec gets them, with what a generated winner adds:
    comment lines above the variant, lines to print, and how to take back a recipe version."""

    overrides: Mapping[str, Any]
    comment: list[str] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)
    undo: Callable[[], None] = lambda: None


def _generated_part(path: Path, scenario: "Scenario", outcome: "SearchOutcome", entry: dict[str, Any]) -> _Written:
    """A generated winner (proposed instruction, drawn demonstrations) of a recipe
    file's recipe as its next version; of an inline recipe, in the variant's recipe."""
    assert outcome.winner is not None
    winner = outcome.winner
    generated = getattr(winner, "generated", None)
    recipe = winner.candidate.variant.recipe
    if generated is None:
        return _Written(winner.candidate.overrides)
    found = _recipe_file(path, recipe)
    if found is None:
        return _inline(winner.candidate.overrides, recipe, generated)
    file, version = found
    if generated.proposal is None and generated.demos == version.demos:
        return _Written(winner.candidate.overrides)  # the version's own demonstrations: nothing new
    return _new_version(path, scenario, outcome, entry, file, version)


def _recipe_file(path: Path, recipe: "RecipeSpec") -> "tuple[Path, RecipeVersion] | None":
    """The recipe file and version the recipe came from (None for an inline recipe)."""
    from ..spec._project import Project

    if recipe.name is None or recipe.version is None:
        return None
    book = Project.of(path).recipe_book(_shown)
    found = book.find(recipe.name)
    if found is None or found.problems or recipe.version not in found.versions:
        raise LLMOptError(f"cannot write the winner as a version of recipe {recipe.ref}: it is no longer in {book.folder}")
    return Path(found.path), found.versions[recipe.version]


def _inline(overrides: Mapping[str, Any], recipe: "RecipeSpec", generated: "Generated") -> _Written:
    """An inline recipe's generated parts in the variant: the instruction as
    ``recipe.system`` (or in its template), the demonstrations as ``recipe.demos``."""
    from ..recipe._write import with_instruction

    out = copy.deepcopy(dict(overrides))
    part = dict(out.get("recipe") or {})
    said = []
    if generated.instruction is not None:
        changes = with_instruction(recipe.system, recipe.template, generated.instruction)
        part.update(changes)
        said.append(f"its instruction as recipe.{'template' if 'template' in changes else 'system'}")
    if generated.demos is not None:
        said.append("its demonstrations as recipe.demos")
    out["recipe"] = part
    note = f"the winner's recipe is inline (no recipe file): variant {WRITTEN!r} holds {' and '.join(said)}"
    return _Written(out, printed=[note])


def _new_version(
    path: Path, scenario: "Scenario", outcome: "SearchOutcome", entry: dict[str, Any], file: Path, version: "RecipeVersion"
) -> _Written:
    """Version N+1 of ``file`` from ``version`` with the winner's generated parts (the
    version already holding them, when there is one), and the variant pointed at it."""
    from ..recipe._write import equal_version, version_changes, write_version
    from ..spec._files import replace_text

    assert outcome.winner is not None and outcome.winner.generated is not None
    generated = outcome.winner.generated
    changes = version_changes(version, instruction=generated.instruction, demos=generated.demos, fixed=generated.fixed_demos)
    what = _generator(generated)
    original = file.read_bytes()
    number = equal_version(file, base=version.version, **changes)
    if number is None:
        provenance = _provenance(path, scenario, outcome, entry, file, what)
        description = f"The winner of llmopt search of {scenario.id} ({what}), from {version.ref}."
        number = write_version(file, base=version.version, description=description, provenance=provenance, **changes)
        done = f"wrote recipe version {version.name}@{number} into {_shown(file)} ({what}, from {version.ref})"
    else:
        done = f"recipe version {version.name}@{number} in {_shown(file)} already holds the winner ({what})"
    ref = f"{version.name}@{number}"
    review = f"llmopt recipes diff {version.ref} {ref}"

    def undo() -> None:
        if file.read_bytes() != original:
            replace_text(Path(os.path.realpath(file)), original.decode("utf-8"))

    comment = [f"recipe {ref}: {what}, from {version.ref} (review: {review})"]
    return _Written(_pointed(path, outcome.winner.candidate.overrides, ref), comment, [done, f"review it: {review}"], undo)


def _generator(generated: "Generated") -> str:
    """``instruction: proposal 3; demos: k=4 bootstrap``."""
    parts = [f"instruction: proposal {generated.proposal}"] if generated.proposal is not None else []
    if generated.demos is not None:
        parts.append(f"demos: k={generated.demos.k} {generated.demos.select}")
    return "; ".join(parts) or "as written"


def _provenance(
    path: Path, scenario: "Scenario", outcome: "SearchOutcome", entry: dict[str, Any], file: Path, what: str
) -> dict[str, Any]:
    """The search that found the version: spec, candidate, objective, dev and test, confirmation."""
    assert scenario.search is not None and outcome.winner is not None
    search, winner = scenario.search, outcome.winner
    splits, c = entry["splits"], entry.get("confirmation") or {}
    last = winner.last
    dev = {"n": last.n, "value": _rounded(last.value)} if last is not None else {"n": splits["dev"]["n"]}
    confirmation = {"vs": search.confirm.vs, "delta": _rounded(c.get("delta")),
                    "ci": [_rounded(x) for x in c["ci"]] if c.get("ci") else None,
                    "p": float(f"{c['p']:.3g}") if isinstance(c.get("p"), (int, float)) else None,
                    "passed": c.get("outcome") == "passed"}
    spec = Path(os.path.relpath(path.resolve(), file.resolve().parent)).as_posix()
    return {"search": scenario.id, "spec": spec, "candidate": winner.name, "generator": what,
            "objective": search.metric_key, "dev": dev, "test": {"n": splits["test"]["n"]},
            "confirmation": {k: v for k, v in confirmation.items() if v is not None},
            "written": datetime.date.today().isoformat()}


def _rounded(value: Any) -> float | None:
    return round(float(value), 4) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _pointed(path: Path, overrides: Mapping[str, Any], ref: str) -> dict[str, Any]:
    """The winner's overrides with its recipe part ``{use: ref}`` (and its ``fields``):
    the top level's other recipe keys (demos, an inline template) set to null."""
    from ..spec._yaml import parse_yaml

    out = copy.deepcopy(dict(overrides))
    given: dict[str, Any] = out["recipe"] if isinstance(out.get("recipe"), dict) else {}
    part: dict[str, Any] = {"use": ref, **({"fields": given["fields"]} if "fields" in given else {})}
    doc, _ = parse_yaml(path.read_text(encoding="utf-8"))
    top = doc.data.get("recipe") if doc is not None and isinstance(doc.data, dict) else None
    part.update({key: None for key in (top if isinstance(top, dict) else {}) if key not in ("use", "fields")})
    out["recipe"] = part
    return out


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

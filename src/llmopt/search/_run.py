"""Running a search: candidates on dev only, by strategy, within the search's budget.

``grid`` scores every candidate on every dev case; ``random`` its seeded sample (drawn
when the spec was loaded); ``halving`` scores every candidate on a seeded subset of dev,
keeps the best 1/eta, and goes on with eta times more cases (the first cases again, so
every comparison stays paired) until one remains. A case already scored for a candidate
is never asked again, and a candidate that makes the same requests as an earlier one
takes its results. Every call goes through the gateway inside the search's limit, so a
rerun answers from the cache and a used-up budget stops the search with the best so far.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..engine.budget import CallLimit
from ..errors import LLMOptError
from ..metric._values import aggregate
from ._effects import grid_effects
from ._outcome import CandidateRun, DevComparison, RoundScore, SearchOutcome

if TYPE_CHECKING:
    from ..dataset import Case
    from ..engine.results import VariantResult
    from ..engine.runner import Runner
    from ..metric import Metric
    from ..spec import Scenario, SearchSpec
    from ._propose import Proposals

__all__ = ["arun_search", "dev_order"]

SELECTION_NOTE = "dev intervals are selection-biased: the winner was picked on them; trust the confirmation on test"


def dev_order(cases: Sequence["Case"], seed: int) -> list["Case"]:
    """The dev cases in the seeded order halving's subsets take them in."""
    order = list(cases)
    random.Random(f"llmopt-search:{seed}").shuffle(order)
    return order


async def arun_search(runner: "Runner", scenario: "Scenario") -> SearchOutcome:
    """Search ``scenario``'s space on its dev split (nothing here reads test)."""
    from ..dataset import load_cases

    spec = scenario.search
    if spec is None:
        raise LLMOptError(f"{scenario.path.name} [{scenario.id}]: the spec has no search section")
    metric = runner.registry.metrics[spec.metric]
    task = spec.candidates[0].variant.task
    order = dev_order(load_cases(task, scenario.path, unreadable_as_cases=True), spec.seed)
    outcome = SearchOutcome(spec, [CandidateRun(c) for c in spec.candidates], [], _splits(scenario), metric.higher_is_better)
    limit = CallLimit(spec.budget_calls, spec.budget_usd)
    state = _State(runner, scenario, metric, order, outcome, limit)
    with runner.calls.limited(limit):
        if spec.proposals is not None:
            await state.propose()
        await state.rounds()
        if outcome.winner is not None:
            await state.compare_dev()
    if spec.strategy == "grid" and outcome.stopped is None:
        state.effects()
    outcome.notes.append(SELECTION_NOTE)
    return outcome


def _splits(scenario: "Scenario") -> dict[str, Any]:
    from ..dataset import load_parts

    assert scenario.search is not None
    task = scenario.search.candidates[0].variant.task
    parts = load_parts(task, scenario.path)
    if task.train is not None:  # a training file beside dev and test (demonstrations, proposals)
        from ..dataset import load_training_cases

        parts["train"] = load_training_cases(task, scenario.path)
    seed = task.split.seed if task.split is not None else None
    return {"seed": seed, **{p: {"n": len(parts[p]), "ids": [c.id for c in parts[p]]} for p in ("dev", "test", "train")}}


class _State:
    """One search in progress."""

    def __init__(
        self, runner: "Runner", scenario: "Scenario", metric: "Metric", order: list["Case"], outcome: SearchOutcome,
        limit: CallLimit,
    ) -> None:
        self.runner = runner
        self.scenario = scenario
        self.spec: "SearchSpec" = outcome.spec
        self.metric = metric
        self.order = order
        self.outcome = outcome
        self.limit = limit
        self.needed: Mapping[str, tuple[str, Mapping[str, Any]]] = {self.spec.metric_key: (self.spec.metric, self.spec.args)}
        self.by_name = {run.name: run for run in outcome.runs}
        # Ties (frequent on halving's small first rounds) are broken by a seeded draw,
        # not by the order the axis values were written in.
        names = [run.name for run in outcome.runs]
        random.Random(f"llmopt-search-ties:{self.spec.seed}").shuffle(names)
        self.tiebreak = {name: i for i, name in enumerate(names)}

    # -- proposals ----------------------------------------------------------------------

    async def propose(self) -> None:
        """Write the proposed instructions (from the training cases only) and give each
        candidate its text; a candidate whose proposal was dropped is not evaluated."""
        from ..dataset import load_training_cases
        from ..errors import BudgetExceeded
        from ..spec._search import deduplicated
        from ._propose import propose_instructions

        spec = self.spec
        assert spec.proposals is not None
        start = next(run.candidate.variant for run in self.outcome.runs if run.candidate.proposal is None)
        train = [c for c in load_training_cases(start.task, self.scenario.path) if c.error is None]
        try:
            proposals = await propose_instructions(
                self.runner, self.scenario, spec.proposals, start, spec.metric, spec.args, train
            )
        except BudgetExceeded as exc:
            partial = getattr(exc, "partial", None)  # what was written (and paid for) before the stop
            if partial is not None:
                self.outcome.proposals = partial
                self.outcome.usage = self.outcome.usage + partial.usage
            self.outcome.stopped = self.outcome.error = f"the search's budget was used up while proposing instructions: {exc}"
            for run in self.outcome.runs:
                run.error = run.error or "not evaluated: the budget ran out while proposing instructions"
            return
        self.outcome.proposals = proposals
        self.outcome.usage = self.outcome.usage + proposals.usage
        for run in self.outcome.runs:
            number = run.candidate.proposal
            if number is None:
                continue
            text = proposals.text_of(number)
            if text is None:
                run.error = f"not evaluated: proposal {number} was dropped ({_reason(proposals, number)})"
                continue
            variant = run.candidate.variant
            run.candidate = replace(run.candidate, variant=replace(variant, recipe=replace(variant.recipe, instruction=text)))
        for run, candidate in zip(self.outcome.runs, deduplicated([r.candidate for r in self.outcome.runs]), strict=True):
            run.candidate = candidate

    # -- rounds -----------------------------------------------------------------------

    async def rounds(self) -> None:
        alive = [run for run in self.outcome.runs if run.error is None]
        number = 1
        while alive:
            n = self._round_size(number, len(alive))
            complete = await self._round(number, alive, n)
            scored = self._ranked([run for run in alive if run.error is None and _scored_on(run, number)])
            if not complete:
                self._stop(number, scored)
                return
            keep = self._kept(len(scored), n)
            for run in scored[keep:]:
                run.dropped_in = number
            self.outcome.rounds.append({"round": number, "n": n, "candidates": len(alive), "kept": min(keep, len(scored))})
            alive = scored[:keep]
            if len(alive) <= 1 and (n == len(self.order) or self.spec.strategy != "halving" or not alive):
                self.outcome.winner = alive[0] if alive else None
                if not alive:
                    self.outcome.error = self._no_winner()
                return
            number += 1

    def _round_size(self, number: int, alive: int) -> int:
        total = len(self.order)
        if self.spec.strategy != "halving" or alive <= self.spec.eta:
            return total
        return min(total, self.spec.min_cases * self.spec.eta ** (number - 1))

    def _kept(self, scored: int, n: int) -> int:
        if self.spec.strategy != "halving":
            return 1
        return max(1, math.ceil(scored / self.spec.eta))

    async def _round(self, number: int, alive: Sequence[CandidateRun], n: int) -> bool:
        """Score every live candidate on the first ``n`` dev cases; False when the
        budget stopped the round."""
        cases = self.order[:n]
        for run in alive:
            if not await self._score(run, cases):
                return False
            if run.error is None:
                run.rounds.append(self._round_score(run, number, cases))
        return True

    async def _score(self, run: CandidateRun, cases: Sequence["Case"]) -> bool:
        twin = self.by_name.get(run.candidate.same_as or "")
        if twin is not None:  # the same requests: the earlier candidate's answers (asked for it if need be)
            if not await self._score(twin, cases):
                return False
            run.cases.update({c.id: twin.cases[c.id] for c in cases if c.id in twin.cases})
            run.error, run.demos = twin.error, twin.demos
            return True
        new = [c for c in cases if c.id not in run.cases]
        if not new:
            return True
        if self.limit.exhausted:
            return False
        variant = replace(run.candidate.variant, name=run.name)
        result = await self.runner.aevaluate_spec(self.scenario, variant, self.needed, cases=new)
        self._count(result)
        if result.demos is not None:
            run.demos = dict(result.demos)
        return self._keep(run, result)

    def _keep(self, run: CandidateRun, result: "VariantResult") -> bool:
        """Take the scored cases; a case the budget refused is left out (asked again on
        a rerun), any other case error disqualifies the candidate."""
        refused = [c for c in result.cases if c.error is not None and self.limit.label in c.error]
        run.cases.update({c.id: c for c in result.cases if c not in refused})
        failed = next((c.error for c in result.cases if c.error is not None and c not in refused), None)
        if failed is not None:
            run.error = failed
        return not refused

    def _count(self, result: "VariantResult") -> None:
        usage = result.usage
        for extra in (result.judge_usage, result.retrieval_usage, result.demos_usage):
            if extra is not None:
                usage = usage + extra
        self.outcome.usage = self.outcome.usage + usage

    def _round_score(self, run: CandidateRun, number: int, cases: Sequence["Case"]) -> RoundScore:
        found = aggregate(self.metric, self.spec.args, self.spec.metric_key, [run.cases[c.id] for c in cases])
        if found is None:
            return RoundScore(number, 0, math.nan, None, None)
        return RoundScore(number, found.n, float(found.interval.value), found.ci, found.interval.se)

    def _ranked(self, runs: Sequence[CandidateRun]) -> list[CandidateRun]:
        index = self.tiebreak
        sign = -1.0 if self.outcome.higher_is_better else 1.0

        def key(run: CandidateRun) -> tuple[float, int]:
            value = run.last.value if run.last is not None else math.nan
            return (math.inf if math.isnan(value) else sign * value, index[run.name])

        return sorted(runs, key=key)

    def _stop(self, number: int, scored: list[CandidateRun]) -> None:
        """The budget ran out in round ``number``: the best of the candidates scored on
        the most cases wins, with a note."""
        done = [run for run in self.outcome.runs if run.error is None and run.rounds]
        last = max((run.last.round for run in done if run.last is not None), default=0)
        pool = self._ranked([run for run in done if run.last is not None and run.last.round == last])
        self.outcome.winner = pool[0] if pool else None
        best = f"best so far: {pool[0].name}" if pool else "no candidate was scored"
        self.outcome.stopped = (
            f"the search's budget ({self.limit.describe()}) was used up in round {number} after {self.limit.made} "
            f"calls; {best}"
        )
        if not pool:
            self.outcome.error = self.outcome.stopped

    def _no_winner(self) -> str:
        failed = [run for run in self.outcome.runs if run.error is not None]
        first = failed[0].error if failed else "no case could be scored"
        return f"no candidate could be scored on dev ({len(failed)} failed); the first failure: {first}"

    # -- after the rounds -----------------------------------------------------------

    async def compare_dev(self) -> None:
        """The winner against ``confirm.vs`` on the same dev cases (the curse shown)."""
        from ..assertion import paired_statistics
        from ..spec import AssertionSpec

        winner = self.outcome.winner
        assert winner is not None and winner.last is not None
        vs_name = self.spec.confirm.vs
        cases = self.order[: winner.last.n] if self.spec.strategy == "halving" else self.order
        base = self.scenario.variants[vs_name]
        other = replace(base, name=vs_name, task=replace(base.task, part="dev"))
        try:
            result = await self.runner.aevaluate_spec(self.scenario, other, self.needed, cases=cases)
        except LLMOptError as exc:
            self.outcome.notes.append(f"{vs_name} could not be scored on dev: {exc}")
            return
        self._count(result)
        theirs = {c.id: c for c in result.cases if c.error is None and self.spec.metric_key in c.scores}
        pairs = [(winner.cases[c.id], theirs[c.id]) for c in cases if c.id in theirs and winner.cases[c.id].error is None]
        if not pairs:
            return
        a = AssertionSpec(index=0, metric=self.spec.metric, variant="search", args=self.spec.args, vs=vs_name,
                          confidence=self.spec.confirm.confidence, key=self.spec.metric_key)
        paired, value = paired_statistics(a, self.metric, pairs, self.spec.confirm.confidence)
        found = aggregate(self.metric, self.spec.args, self.spec.metric_key, [p[0] for p in pairs])
        ci = found.ci if found is not None else None
        delta_ci = (paired.low, paired.high) if paired.low is not None and paired.high is not None else None
        self.outcome.dev = DevComparison(len(pairs), value, ci, vs_name, value - paired.delta, paired.delta, delta_ci)

    def effects(self) -> None:
        """Main effects and interactions, when every grid candidate was scored on every dev case."""
        runs = self.outcome.runs
        if any(run.error is not None for run in runs):
            dropped = sum(1 for run in runs if (run.error or "").startswith("not evaluated: proposal"))
            why = f"{dropped} candidates use a dropped proposal" if dropped else "some candidates could not be scored"
            self.outcome.notes.append(f"no effects: {why}")
            return
        axes = [(axis.path, axis.values) for axis in self.spec.axes]
        ids = [c.id for c in self.order if all(_ok(run, c.id, self.spec.metric_key) for run in runs)]
        if len(ids) < 2 or len(runs) != self.spec.size:
            return
        scores = {_index(run, axes): {i: run.cases[i].scores[self.spec.metric_key] for i in ids} for run in runs}
        mains, pairs = grid_effects(axes, scores, ids)
        self.outcome.effects, self.outcome.interactions = mains, pairs


def _reason(proposals: "Proposals", number: int) -> str:
    return next((p.dropped or "" for p in proposals.items if p.number == number), "")


def _scored_on(run: CandidateRun, number: int) -> bool:
    return run.last is not None and run.last.round == number


def _ok(run: CandidateRun, case_id: str, key: str) -> bool:
    case = run.cases.get(case_id)
    return case is not None and case.error is None and key in case.scores


def _index(run: CandidateRun, axes: Sequence[tuple[str, Sequence[Any]]]) -> tuple[int, ...]:
    levels = run.candidate.levels
    return tuple(_position(values, levels[path]) for path, values in axes)


def _position(values: Sequence[Any], value: Any) -> int:
    for i, found in enumerate(values):
        if found == value and type(found) is type(value):
            return i
    return list(values).index(value)


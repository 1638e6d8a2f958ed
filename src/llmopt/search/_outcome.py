"""What a search found: its candidates' scores per round, the winner, the effects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.results import Usage
from ._effects import Effect, level_text

if TYPE_CHECKING:
    from ..engine.results import CaseResult
    from ..recipe import Demo
    from ..spec import Candidate, DemosSpec, SearchSpec
    from ._propose import Proposals


@dataclass(frozen=True)
class RoundScore:
    """A candidate's objective over the first ``n`` dev cases (its round's subset)."""

    round: int
    n: int
    value: float
    ci: tuple[float, float] | None
    se: float | None

    def to_json(self) -> dict[str, Any]:
        ci = list(self.ci) if self.ci is not None else None
        return {"round": self.round, "n": self.n, "value": self.value, "ci": ci, "se": self.se}


@dataclass(frozen=True)
class Generated:
    """What the search generated for a candidate: a proposed instruction, drawn
    demonstrations (``fixed_demos``: the ones random and bootstrap chose; None for
    similar, whose demonstrations differ by case)."""

    instruction: str | None
    proposal: int | None
    demos: "DemosSpec | None"
    fixed_demos: tuple["Demo", ...] | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.proposal is not None:
            out["proposal"] = self.proposal
            out["instruction"] = self.instruction
        if self.demos is not None:
            out["demos"] = self.demos.identity()
            if self.fixed_demos is not None:
                out["demo_ids"] = [d.id for d in self.fixed_demos]
        return out


@dataclass
class CandidateRun:
    """One candidate as the search saw it: case results by id, scores per round."""

    candidate: "Candidate"
    cases: dict[str, "CaseResult"] = field(default_factory=dict)
    rounds: list[RoundScore] = field(default_factory=list)
    dropped_in: int | None = None
    error: str | None = None
    #: The demonstrations of its last evaluation (``VariantResult.demos``).
    demos: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def last(self) -> RoundScore | None:
        return self.rounds[-1] if self.rounds else None

    @property
    def generated(self) -> Generated | None:
        """The candidate's generated parts (None when it has none)."""
        from ..recipe import Demo

        recipe = self.candidate.variant.recipe
        if self.candidate.proposal is None and recipe.demos is None:
            return None
        shown = (self.demos or {}).get("shown")
        fixed = tuple(Demo(**d) for d in shown) if shown is not None and recipe.demos is not None else None
        return Generated(recipe.instruction, self.candidate.proposal, recipe.demos, fixed)

    def to_json(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "name": c.name,
            "overrides": c.overrides,
            "levels": {path: level_text(value) for path, value in c.levels.items()},
            "same_as": c.same_as,
            "rounds": [r.to_json() for r in self.rounds],
            "dropped_in": self.dropped_in,
            "error": self.error,
            **({"generated": g.to_json()} if (g := self.generated) is not None else {}),
        }


@dataclass(frozen=True)
class DevComparison:
    """The winner against ``confirm.vs`` on the dev cases of its last round."""

    n: int
    value: float
    ci: tuple[float, float] | None
    vs: str
    vs_value: float
    delta: float
    delta_ci: tuple[float, float] | None


@dataclass
class SearchOutcome:
    """The whole search, ready for the results JSON (``scenarios[].search``)."""

    spec: "SearchSpec"
    runs: list[CandidateRun]
    rounds: list[dict[str, int]]
    splits: dict[str, Any]
    higher_is_better: bool
    winner: CandidateRun | None = None
    dev: DevComparison | None = None
    effects: list[Effect] = field(default_factory=list)
    interactions: list[Effect] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stopped: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    #: The proposed instructions (None without an instructions axis).
    proposals: "Proposals | None" = None

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "from": spec.source or "",
            "space": {"axes": {a.path: [level_text(v) for v in a.values] if a.kind == "demos" else list(a.values)
                               for a in spec.axes}, "size": spec.size},
            "strategy": {"name": spec.strategy, "eta": spec.eta, "min_cases": spec.min_cases,
                         "trials": spec.trials, "seed": spec.seed},
            "objective": {"metric": spec.metric, "key": spec.metric_key, "args": dict(spec.args),
                          "higher_is_better": self.higher_is_better},
            "splits": self.splits,
            "candidates": [run.to_json() for run in self.runs],
            "rounds": self.rounds,
            "winner": self._winner_json(),
            "effects": [e.to_json() for e in self.effects],
            "interactions": [e.to_json() for e in self.interactions],
            "confirmation": None,
            "usage": {"calls": self.usage.calls, "cache_hits": self.usage.cache_hits, "cost_usd": self.usage.cost_usd,
                      "input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            "stopped": self.stopped,
            "error": self.error,
            "notes": self.notes,
            "generated": self.generated_json(),
        }

    def generated_json(self) -> dict[str, Any] | None:
        """How many candidates the search generated, and how many it tried on dev."""
        generated = [run for run in self.runs if run.generated is not None]
        if not generated and self.proposals is None:
            return None
        tried = [run for run in generated if run.rounds]
        out: dict[str, Any] = {"candidates": len(generated), "tried": len(tried)}
        if self.proposals is not None:
            out["proposals"] = self.proposals.to_json()
        return out

    def _winner_json(self) -> dict[str, Any] | None:
        if self.winner is None:
            return None
        found = self.winner.to_json()
        out = {"name": found["name"], "overrides": found["overrides"], "levels": found["levels"], "dev": None}
        if self.dev is not None:
            d = self.dev
            out["dev"] = {"n": d.n, "value": d.value, "ci": _list(d.ci), "vs": d.vs, "vs_value": d.vs_value,
                          "delta": d.delta, "delta_ci": _list(d.delta_ci)}
        return out


def _list(ci: tuple[float, float] | None) -> list[float] | None:
    return list(ci) if ci is not None else None

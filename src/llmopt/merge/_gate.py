"""The verdicts of a merged run: every assertion checked by :mod:`llmopt.assertion`
on the merged results, as the pytest item would (errors, comparability, Holm's
family, the stored baseline), and the outcome written as the item's would be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..engine.results import AssertionOutcome
from ..errors import LLMOptError
from ._fingerprint import GATED

if TYPE_CHECKING:
    from ..assertion import Verdict
    from ..baseline import Baselines
    from ..engine.results import VariantResult
    from ..metric import Metric
    from ..spec import AssertionSpec, Scenario

__all__ = ["Gating", "gate"]


@dataclass(frozen=True)
class Gating:
    """What checking one merged scenario needs."""

    scenario: "Scenario"
    metrics: Mapping[str, "Metric"]
    results: Mapping[str, "VariantResult"]
    baselines: "Baselines"
    worst: int = 3

    def result(self, variant: str) -> "VariantResult":
        if variant not in self.results:
            raise LLMOptError(f"variant {variant!r} was not evaluated in every shard (see the shards' errors)")
        return self.results[variant]


def gate(g: Gating, outcomes: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[AssertionOutcome]:
    """The outcome of every assertion the shards gated after the merge (their node id
    -> each shard's outcome); one a shard could not evaluate keeps that outcome."""
    named = {f"{a.variant}::{name}": a for variant in g.scenario.variants for a, name in _items(g.scenario, variant)}
    found = []
    for node_id, per_shard in outcomes.items():
        a = named.get("::".join(node_id.split("::")[-2:]))
        if a is None:
            from ._shards import MergeRefused

            what = f"{node_id}: not an assertion of {g.scenario.path.name}"
            raise MergeRefused(f"{what}; llmopt merge gates assertions only (run a search unsharded)")
        kept = _kept(per_shard)
        found.append(_outcome(g.scenario.id, node_id, a, *kept) if kept else _checked(g, node_id, a))
    return found


def _items(scenario: "Scenario", variant: str) -> list[tuple["AssertionSpec", str]]:
    from ..assertion import variant_items

    return variant_items(scenario.assertions, variant)


def _kept(per_shard: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(outcome, message) of a shard whose item errored or skipped for its own reason
    (an error first); None when every shard left the verdict to the merge."""
    for wanted in ("error", "skipped"):
        for index, o in enumerate(per_shard):
            if o.get("outcome") == wanted and o.get("message") != GATED:
                return wanted, f"in shard {index + 1}/{len(per_shard)}: {o.get('message')}"
    return None


def _where(a: "AssertionSpec", scenario: "Scenario") -> str:
    return str(a.location) if a.location else scenario.path.name


def _checked(g: Gating, node_id: str, a: "AssertionSpec") -> AssertionOutcome:
    """Check ``a`` on the merged results: its outcome, or an error's."""
    from ..report import failure_text

    try:
        verdict = _verdict(g, a)
    except LLMOptError as exc:
        return _outcome(g.scenario.id, node_id, a, "error", f"{_where(a, g.scenario)}: {exc}")
    message = "" if verdict.passed else failure_text(a, verdict, _where(a, g.scenario))
    return _outcome(g.scenario.id, node_id, a, "passed" if verdict.passed else "failed", message, verdict)


def _verdict(g: Gating, a: "AssertionSpec") -> "Verdict":
    """What the pytest item's setup and call phases decide, in that order."""
    from ..assertion import check, check_comparable, check_errors, holm_family

    results = {name: g.result(name) for name in ([a.vs] if a.vs else []) + [a.variant]}
    check_errors(a, list(results.values()))
    check_comparable(a, results)
    stored = g.baselines.stored(g.scenario, a, results[a.variant]) if a.regression is not None else None
    evaluate: Callable[[str], "VariantResult"] = g.result
    family = holm_family(g.scenario, a, g.metrics, evaluate)
    return check(a, g.metrics[a.metric], results, worst=g.worst, family=family, stored=stored)


def _outcome(
    scenario: str, node_id: str, a: "AssertionSpec", outcome: str, message: str, verdict: "Verdict | None" = None
) -> AssertionOutcome:
    """The outcome as the plugin records an item's (``LLMOptSession.record``)."""
    return AssertionOutcome(
        id=node_id,
        scenario=scenario,
        variant=a.variant,
        metric=a.metric_key,
        outcome=outcome,
        observed=verdict.observed if verdict else None,
        expected=verdict.expected if verdict else node_id.split("::")[-1],
        delta=verdict.delta if verdict else None,
        vs=a.vs,
        message=message,
        stats=verdict.stats_json() if verdict else {"kind": a.kind, "confidence": a.gate_confidence},
    )

"""The Metric protocol: a per-case scorer plus an aggregator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from ..dataset._case import Case


@dataclass(frozen=True)
class Sample:
    """One generation to score: the case, the output and how long it took.

    ``retrieved`` holds the ids of the documents retrieved for the case, best first,
    each once (at its best rank); empty without retrieval. A retrieval-only variant's
    sample has an empty ``output``. ``input`` is the case's input text (the
    ``task.input`` field, else the rendered prompt) and ``context`` the retrieved
    text as the template saw it (None without retrieval), for judge metrics.
    """

    case: Case
    output: str
    latency_s: float = 0.0
    #: What the call cost in USD (the original call's cost for a cache hit).
    cost_usd: float = 0.0
    retrieved: tuple[str, ...] = ()
    input: str = ""
    context: str | None = None

    @property
    def expected(self) -> Any:
        return self.case.expected


class Metric(Protocol):
    """A named metric, registered through ``llmopt_metrics``.

    ``score`` returns a float per sample (raise MetricError when a sample cannot be
    scored: that case becomes an error, never a 0). ``aggregate`` turns the scores of
    a variant into one value (the mean for most metrics).

    Optional attributes (read with defaults): ``needs_output`` (default True) is False
    for a metric that can measure a retrieval-only variant (``model: null``);
    ``needs_retrieval`` (default False) is True for a metric that only means something
    on a variant with retrieval.

    A metric that must call a model (a judge) defines
    ``async def ascore(sample, args, ctx) -> float`` instead of a working ``score``:
    the runner awaits it with a context whose ``ask`` calls a provider through the
    response cache and the budget (see ``llmopt.metric.JudgeContext``).
    """

    name: str
    description: str
    #: True when a larger value is better (False for latency, cost).
    higher_is_better: bool

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        """Problems with ``args`` found at collection (unknown keys, bad pattern)."""

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        """Score one sample."""

    def aggregate(
        self, samples: Sequence[Sample], scores: Sequence[float], args: Mapping[str, Any]
    ) -> float:
        """Aggregate the per-sample scores of one variant."""

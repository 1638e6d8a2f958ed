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
    #: The retrieval's ``top_k`` (None without retrieval): the cut of the retrieval
    #: metrics without ``args.k``.
    top_k: int | None = None

    @property
    def expected(self) -> Any:
        return self.case.expected


class Metric(Protocol):
    """A named metric, registered through ``llmopt_metrics``.

    ``score`` returns a float per sample (raise MetricError when a sample cannot be
    scored: that case becomes an error, never a 0). ``aggregate`` turns the scores of
    a variant into one value (the mean for most metrics).

    ``name``, ``description``, ``check_args``, ``score`` and ``aggregate`` are
    required; the other members are optional, with the defaults of
    :class:`MetricBase`. A metric that must call a model (a judge) sets
    ``asks_model = True`` and defines ``async def ascore(sample, args, ctx)``: the
    runner awaits it with a context whose ``ask`` calls a provider through the call
    gateway (see ``llmopt.metric.JudgeContext``).
    """

    name: str
    description: str
    #: True when a larger value is better (False for latency, cost, toxicity).
    higher_is_better: bool
    #: False for a metric that can measure a retrieval-only variant (``model: null``).
    needs_output: bool
    #: True for a metric that only means something on a variant with retrieval.
    needs_retrieval: bool
    #: True for a metric whose ``ascore`` asks a judging model.
    asks_model: bool
    #: True when ``aggregate`` is the plain mean of the scores (intervals are then
    #: analytic); None: unknown (a bootstrap is used).
    aggregate_is_mean: bool | None
    #: The lowest and highest value the metric can take (None: no bound), such as
    #: ``(0.0, 1.0)`` for a rate: a check outside it is a spec error.
    value_range: tuple[float | None, float | None]

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        """Problems with ``args`` found at collection (unknown keys, bad pattern)."""

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        """Score one sample."""

    async def ascore(self, sample: Sample, args: Mapping[str, Any], ctx: Any) -> float:
        """Score one sample, awaited by the runner (``ctx``: the judging context when
        ``asks_model``, else None); default: ``score``."""

    def aggregate(
        self, samples: Sequence[Sample], scores: Sequence[float], args: Mapping[str, Any]
    ) -> float:
        """Aggregate the per-sample scores of one variant."""


class MetricBase:
    """The defaults of a metric's optional members; derive a metric from it (or from
    :class:`llmopt.metric.CaseMetric`, which adds argument checks and the mean)."""

    name: str = ""
    description: str = ""
    higher_is_better: bool = True
    needs_output: bool = True
    needs_retrieval: bool = False
    asks_model: bool = False
    aggregate_is_mean: bool | None = None
    value_range: tuple[float | None, float | None] = (None, None)

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        return []

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement score()")

    async def ascore(self, sample: Sample, args: Mapping[str, Any], ctx: Any) -> float:
        return float(self.score(sample, args))

    def aggregate(
        self, samples: Sequence[Sample], scores: Sequence[float], args: Mapping[str, Any]
    ) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement aggregate()")


METRIC_OPTIONAL = (
    "higher_is_better", "needs_output", "needs_retrieval", "asks_model", "aggregate_is_mean", "value_range", "ascore",
)
#: The value range of a metric whose scores are each 0 or 1 (or a fraction), averaged.
UNIT_RANGE: tuple[float | None, float | None] = (0.0, 1.0)
#: The value range of a metric that counts up from 0 (seconds, dollars).
NON_NEGATIVE: tuple[float | None, float | None] = (0.0, None)
METRIC_REQUIRED = ("name", "check_args", "score", "aggregate")


def declared_metric(metric: Metric) -> Metric:
    """``metric`` with the defaults of the optional members it lacks. A metric that
    defines its own ``ascore`` but says nothing of ``asks_model`` is a judge."""
    import inspect

    from .._contracts import with_defaults

    if not isinstance(metric, MetricBase):
        try:
            inspect.getattr_static(metric, "asks_model")
        except AttributeError:
            try:
                inspect.getattr_static(metric, "ascore")
                metric.asks_model = True
            except AttributeError:
                pass
    declared = with_defaults(metric, MetricBase, METRIC_OPTIONAL, METRIC_REQUIRED, "metric")
    _check_range(declared)
    return declared


def _check_range(metric: Metric) -> None:
    """PluginError naming the metric when its ``value_range`` is not (lowest, highest),
    each a number or None, the lowest first."""
    from ..errors import PluginError

    declared: Any = metric.value_range
    numbers = isinstance(declared, (tuple, list)) and len(declared) == 2 and all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in declared
    )
    if not numbers or (None not in declared and declared[0] > declared[1]):
        source = getattr(getattr(metric, "function", None), "__module__", None) or type(metric).__module__
        raise PluginError(
            f"metric {metric.name!r} ({source}) declares value_range {declared!r}: it must be (lowest, highest),"
            " each a number or None"
        )

"""CaseMetric: the base class for a metric scored case by case, and ``case_metric``.

A plugin author writes a metric in a few lines::

    class NoCompetitor(llmopt.metric.CaseMetric):
        name = "no_competitor"
        description = "1.0 when the answer names no competitor"

        def score(self, sample, args):
            return 0.0 if "globex" in sample.output.lower() else 1.0

or, from a plain function::

    @llmopt.metric.case_metric(name="no_competitor")
    def no_competitor(sample, args):
        "1.0 when the answer names no competitor."
        return "globex" not in sample.output.lower()

and returns the instance (``NoCompetitor()`` or ``no_competitor``) from its
``llmopt_metrics`` hook.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Callable, Iterable, Mapping, Sequence

from ..errors import MetricError
from ._aggregate import mean
from ._args import unknown_args
from ._base import MetricBase, Sample

ScoreFunction = Callable[[Sample, Mapping[str, Any]], float]


class CaseMetric(MetricBase):
    """Base class of a metric whose score is computed for each sample on its own.

    Subclasses set ``name``, a one-line ``description``, ``higher_is_better`` and the
    ``allowed_args`` keys, and implement :meth:`score`. By default :meth:`check_args`
    reports unknown keys (extend it, calling ``super()``, to check values) and
    :meth:`aggregate` is the mean of the scores.
    """

    name: str = ""
    description: str = ""
    higher_is_better: bool = True
    allowed_args: AbstractSet[str] = frozenset()
    #: Whether :meth:`aggregate` is the plain mean of the scores (intervals then use a
    #: fast vectorized bootstrap). None means: true unless a subclass overrides
    #: ``aggregate``; set it to True when an override still computes the mean.
    aggregate_is_mean: bool | None = None
    #: Whether the metric reads the generated output (False: a retrieval-only variant
    #: can be measured by it).
    needs_output: bool = True
    #: Whether the metric measures what was retrieved (a variant needs retrieval).
    needs_retrieval: bool = False

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        """Problems with ``args``: by default, the keys not in ``allowed_args``."""
        return unknown_args(self.name, args, self.allowed_args)

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        """Score one sample (subclasses implement this)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score()")

    def aggregate(
        self, samples: Sequence[Sample], scores: Sequence[float], args: Mapping[str, Any]
    ) -> float:
        """The mean of ``scores`` (NaN when there are none)."""
        return mean(scores)

    def require_expected(self, sample: Sample) -> Any:
        """The sample's expected value; MetricError when the case has none."""
        if sample.expected is None:
            raise MetricError(
                f"metric '{self.name}' needs an expected value; set task.expected"
            )
        return sample.expected

    def expected_text(self, sample: Sample) -> str:
        """The expected value as a string (see :meth:`require_expected`)."""
        return str(self.require_expected(sample))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def is_mean_aggregate(metric: Any) -> bool:
    """True when ``metric``'s aggregate is the mean of its per-case scores: as it
    declares, else for a CaseMetric that keeps the mean."""
    if metric.aggregate_is_mean is not None:
        return bool(metric.aggregate_is_mean)
    return isinstance(metric, CaseMetric) and type(metric).aggregate is CaseMetric.aggregate


class FunctionMetric(CaseMetric):
    """A :class:`CaseMetric` whose score is a plain function; see :func:`case_metric`."""

    def __init__(
        self,
        function: ScoreFunction,
        *,
        name: str,
        description: str,
        higher_is_better: bool = True,
        allowed_args: Iterable[str] = (),
        value_range: tuple[float | None, float | None] = (None, None),
    ) -> None:
        self.function = function
        self.name = name
        self.description = description
        self.higher_is_better = higher_is_better
        self.allowed_args = frozenset(allowed_args)
        self.value_range = value_range

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        value = self.function(sample, args)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise MetricError(
                f"metric '{self.name}' returned {value!r}, which is not a number"
            ) from None


def case_metric(
    name: str | None = None,
    *,
    description: str | None = None,
    higher_is_better: bool = True,
    allowed_args: Iterable[str] = (),
    value_range: tuple[float | None, float | None] = (None, None),
) -> Callable[[ScoreFunction], FunctionMetric]:
    """Turn a function ``(sample, args) -> float | bool`` into a metric.

    ``name`` defaults to the function's name and ``description`` to the first line of
    its docstring. The decorated name is bound to the metric object, ready to return
    from an ``llmopt_metrics`` hook. The aggregate is the mean. ``value_range``
    (lowest, highest; None for no bound) lets a check outside it be refused as a spec
    error, such as ``min: 1.5`` on a score from 0 to 1.
    """

    def wrap(function: ScoreFunction) -> FunctionMetric:
        doc = (function.__doc__ or "").strip().splitlines()
        return FunctionMetric(
            function,
            name=name or function.__name__,
            description=description if description is not None else (doc[0] if doc else ""),
            higher_is_better=higher_is_better,
            allowed_args=allowed_args,
            value_range=value_range,
        )

    return wrap

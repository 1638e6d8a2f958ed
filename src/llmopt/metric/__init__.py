"""Metrics: the protocol, the built-ins and a base class for plugin authors."""

from ..errors import MetricError
from ._aggregate import mean, percentile
from ._base import Metric, MetricBase, Sample, declared_metric
from ._builtin import builtin_metrics, strip_json_fence, token_f1
from ._case_metric import CaseMetric, FunctionMetric, case_metric, is_mean_aggregate
from ._judge import JudgeContext, JudgeMetric
from ._normalize import extract_label, normalize_answer, normalize_label
from ._retrieval import RetrievalMetric
from ._verdict import Verdict

__all__ = [
    "Metric",
    "MetricBase",
    "declared_metric",
    "Sample",
    "MetricError",
    "CaseMetric",
    "FunctionMetric",
    "RetrievalMetric",
    "JudgeContext",
    "JudgeMetric",
    "Verdict",
    "case_metric",
    "is_mean_aggregate",
    "builtin_metrics",
    "mean",
    "percentile",
    "normalize_answer",
    "normalize_label",
    "extract_label",
    "token_f1",
    "strip_json_fence",
]

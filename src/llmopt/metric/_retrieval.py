"""Retrieval metrics: how well the retrieved documents cover a case's relevant ones.

Each compares ``sample.retrieved`` (document ids, best first, each once) with the
case's relevant documents (``task.relevant``), cut at ``args.k`` (default:
``retrieval.top_k``). Relevance is binary. As in trec_eval, ``precision_at_k`` divides
by that k, not by the number of documents retrieved: ranks left empty (fewer documents
than ``top_k``, e.g. several chunks of one document) count as misses.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..errors import MetricError
from ._base import UNIT_RANGE, Sample
from ._case_metric import CaseMetric

__all__ = ["RetrievalMetric", "RecallAtK", "PrecisionAtK", "MRR", "NDCGAtK", "HitRate", "retrieval_metrics"]


class RetrievalMetric(CaseMetric):
    """Base of the retrieval metrics: ``args.k``, the case's relevant set, the cut."""

    allowed_args = frozenset({"k"})
    needs_output = False
    value_range = UNIT_RANGE
    needs_retrieval = True

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        problems = super().check_args(args)
        k = args.get("k", 1)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            problems.append(f"argument 'k' of metric '{self.name}' must be an integer >= 1, got {k!r}")
        return problems

    def relevant(self, sample: Sample) -> frozenset[str]:
        """The case's relevant document ids; MetricError when it has none."""
        if not sample.case.relevant:
            raise MetricError(f"metric '{self.name}' needs the case's relevant documents; set task.relevant")
        return frozenset(sample.case.relevant)

    def cut(self, sample: Sample, args: Mapping[str, Any]) -> tuple[int, Sequence[str]]:
        """``k`` (``args.k``, else the retrieval's ``top_k``, else the number retrieved)
        and the first ``k`` retrieved document ids."""
        k = int(args.get("k") or sample.top_k or len(sample.retrieved))
        return k, sample.retrieved[:k]

    def score(self, sample: Sample, args: Mapping[str, Any]) -> float:
        relevant = self.relevant(sample)
        k, ranked = self.cut(sample, args)
        return self.measure([doc in relevant for doc in ranked], k, len(relevant))

    def measure(self, hits: Sequence[bool], k: int, relevant: int) -> float:
        """The score from the relevance of each ranked document (subclasses)."""
        raise NotImplementedError


class RecallAtK(RetrievalMetric):
    name = "recall_at_k"
    description = "share of the case's relevant documents among the first k retrieved"

    def measure(self, hits: Sequence[bool], k: int, relevant: int) -> float:
        return sum(hits) / relevant


class PrecisionAtK(RetrievalMetric):
    name = "precision_at_k"
    description = "share of the first k ranks (args.k, default retrieval.top_k) holding a relevant document"

    def measure(self, hits: Sequence[bool], k: int, relevant: int) -> float:
        return sum(hits) / k if k else 0.0


class MRR(RetrievalMetric):
    name = "mrr"
    description = "mean reciprocal rank of the first relevant document among the first k (0 when none)"

    def measure(self, hits: Sequence[bool], k: int, relevant: int) -> float:
        return next((1.0 / rank for rank, hit in enumerate(hits, start=1) if hit), 0.0)


class NDCGAtK(RetrievalMetric):
    name = "ndcg_at_k"
    description = "normalized discounted cumulative gain of the first k retrieved (binary relevance, log2 discount)"

    def measure(self, hits: Sequence[bool], k: int, relevant: int) -> float:
        dcg = sum(1.0 / math.log2(rank + 1) for rank, hit in enumerate(hits, start=1) if hit)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(relevant, k) + 1))
        return dcg / ideal if ideal else 0.0


class HitRate(RetrievalMetric):
    name = "hit_rate"
    description = "1.0 when a relevant document is among the first k retrieved"

    def measure(self, hits: Sequence[bool], k: int, relevant: int) -> float:
        return float(any(hits))


def retrieval_metrics() -> list[RetrievalMetric]:
    """A fresh instance of every retrieval metric."""
    return [RecallAtK(), PrecisionAtK(), MRR(), NDCGAtK(), HitRate()]

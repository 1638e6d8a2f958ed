"""What an evaluation produces: per-case results, per-variant results, outcomes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..provider._usage import Usage

__all__ = ["AssertionOutcome", "CaseResult", "MetricValue", "Usage", "VariantResult"]

#: Encodes case records (made once: ``json.dumps`` with options makes a new encoder
#: on every call).
_RECORD = json.JSONEncoder(ensure_ascii=False, default=str)


@dataclass(frozen=True)
class CaseResult:
    """One case of a variant: outputs (one per repeat), scores, or the error."""

    id: str
    input: str = ""
    expected: Any = None
    outputs: tuple[str, ...] = ()
    latencies_s: tuple[float, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    cached: int = 0
    #: The retrieved chunks, best first: {"id": chunk id, "doc_id": document id, "score"}.
    retrieved: tuple[Mapping[str, Any], ...] = ()
    #: The case's relevant document ids (task.relevant), when it names them.
    relevant: tuple[str, ...] | None = None
    usage: Usage = field(default_factory=Usage)
    #: What the server reported: model name, system_fingerprint, stop reason.
    served: Mapping[str, Any] = field(default_factory=dict)
    #: Judge metrics' verdicts by metric key: {"verdict", "score", "reason"}.
    judges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: What the judge calls of this case used (apart from ``usage``).
    judge_usage: Usage = field(default_factory=Usage)
    #: The recipe from the recipes folder ({"name", "version"}), when the variant uses one.
    recipe: Mapping[str, Any] | None = None
    #: ``sha256:`` + 12 hex digits of the rendered messages.
    prompt_hash: str | None = None
    #: Share of the generations that scored alike (None with one generation).
    consistency: float | None = None
    #: The case's group (the task.cluster field), for clustered standard errors.
    cluster: str | None = None
    #: The case's place among all the variant's cases, in a shard's results
    #: (``--llmopt-shard``): a merge puts the shards' cases back in this order.
    position: int | None = None

    @property
    def flaky(self) -> bool:
        """True when the case's generations did not all score alike."""
        return self.consistency is not None and self.consistency < 1.0

    @property
    def output(self) -> str | None:
        return self.outputs[0] if self.outputs else None

    @property
    def retrieved_documents(self) -> tuple[str, ...]:
        """The retrieved document ids, best first, each once (at its best rank)."""
        return tuple(dict.fromkeys(str(r.get("doc_id", r.get("id"))) for r in self.retrieved))

    @property
    def retrieved_summary(self) -> tuple[str, ...]:
        """The retrieved documents with their best score, best first (``refunds.md 0.532``)."""
        best: dict[str, Any] = {}
        for hit in self.retrieved:
            best.setdefault(str(hit.get("doc_id", hit.get("id"))), hit.get("score"))
        return tuple(doc if score is None else f"{doc} {float(score):.3g}" for doc, score in best.items())

    def to_json(self) -> dict[str, Any]:
        data = self._record()
        return _writable(data) if _has_surrogate(data) else data

    def to_json_text(self) -> str:
        """The record of :meth:`to_json` as one line of JSON (one encoder pass, the
        surrogate check done on its text): how the results file streams its cases."""
        data = self._record()
        text = _RECORD.encode(data)
        if _SURROGATE.search(text) is None:
            return text
        return _RECORD.encode(_writable(data))

    def _record(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "input": self.input,
            "expected": self.expected,
            "output": self.output,
            "scores": dict(self.scores),
            "error": self.error,
        }
        if len(self.outputs) > 1:
            data["outputs"] = list(self.outputs)
        data["latency_s"] = round(sum(self.latencies_s) / len(self.latencies_s), 4) if self.latencies_s else None
        if self.latencies_s:  # each generation's, unrounded: what latency metrics aggregate (llmopt merge)
            data["latencies_s"] = list(self.latencies_s)
        data["cached"] = self.cached
        if self.retrieved:
            data["retrieved"] = [dict(r) for r in self.retrieved]
        if self.relevant is not None:
            data["relevant"] = list(self.relevant)
        data["usage"] = self.usage.to_json()
        if self.served:
            data["served"] = dict(self.served)
        if self.judges:
            data["judges"] = {key: dict(value) for key, value in self.judges.items()}
        if self.recipe is not None:
            data["recipe"] = dict(self.recipe)
        if self.prompt_hash is not None:
            data["prompt_hash"] = self.prompt_hash
        if self.consistency is not None:
            data["consistency"] = round(self.consistency, 4)
        if self.cluster is not None:
            data["cluster"] = self.cluster
        if self.position is not None:
            data["position"] = self.position
        return data


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(data: dict[str, Any]) -> bool:
    """Whether a lone surrogate is anywhere in ``data`` (one pass of the C encoder:
    walking every record in Python cost more than the rest of writing it)."""
    return _SURROGATE.search(_RECORD.encode(data)) is not None


def _writable(value: Any) -> Any:
    """``value`` with every lone surrogate (a ``\\ud800`` escape in a dataset row)
    shown as its escape, so the record can be written as UTF-8 anywhere."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8") if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_writable(k): _writable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(v) for v in value]
    return value


@dataclass(frozen=True)
class MetricValue:
    """An aggregate metric with its sample size, standard error and 95% interval.

    ``method`` says how the interval was made: wilson, t, cluster or bootstrap;
    ``clusters`` counts the groups of cases when task.cluster is set.
    """

    value: float
    n: int
    ci: tuple[float, float] | None = None
    se: float | None = None
    method: str | None = None
    clusters: int | None = None
    #: Whether a larger value is better (the metric's own ``higher_is_better``).
    higher_is_better: bool = True

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"value": self.value, "n": self.n, "ci": list(self.ci) if self.ci else None}
        data["se"] = self.se
        data["method"] = self.method
        data["higher_is_better"] = self.higher_is_better
        if self.clusters is not None:
            data["clusters"] = self.clusters
        return data


@dataclass(frozen=True)
class VariantResult:
    """Everything measured for one variant of one scenario."""

    scenario: str
    variant: str
    cases: tuple[CaseResult, ...]
    metrics: Mapping[str, MetricValue]
    usage: Usage
    identity: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    #: What judge metrics' calls used (None when the variant has no judge metric).
    judge_usage: Usage | None = None
    identity_hash: str | None = None
    #: What embedding calls for retrieval used (None when the variant made none).
    retrieval_usage: Usage | None = None
    #: The recipe's demonstrations: k, select, pool size, the ids shown, notes.
    demos: Mapping[str, Any] | None = None
    #: What drawing them used: a bootstrap teacher's calls (None when it made none).
    demos_usage: Usage | None = None

    @property
    def n(self) -> int:
        return len(self.cases)

    @property
    def errors(self) -> int:
        return sum(1 for c in self.cases if c.error is not None)

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0

    @property
    def flaky(self) -> list[str]:
        """Ids of the cases whose repeated generations did not all score alike."""
        return [c.id for c in self.cases if c.flaky]

    def to_json(self) -> dict[str, Any]:
        return self.header_json() | {"cases": [c.to_json() for c in self.cases]}

    def header_json(self) -> dict[str, Any]:
        """:meth:`to_json` without its ``cases`` (which come last there)."""
        return {
            "n": self.n,
            "errors": self.errors,
            "metrics": {k: v.to_json() for k, v in self.metrics.items()},
            "usage": self.usage.to_json(),
            "identity": dict(self.identity),
            "identity_hash": self.identity_hash,
            "flaky": self.flaky,
            "duration_s": round(self.duration_s, 3),
            **({"judge_usage": self.judge_usage.to_json()} if self.judge_usage is not None else {}),
            **({"retrieval_usage": self.retrieval_usage.to_json()} if self.retrieval_usage is not None else {}),
            **({"demos": dict(self.demos)} if self.demos is not None else {}),
            **({"demos_usage": self.demos_usage.to_json()} if self.demos_usage is not None else {}),
        }


@dataclass(frozen=True)
class AssertionOutcome:
    """The verdict of one assertion item, as written to the results JSON."""

    id: str
    scenario: str
    variant: str
    metric: str
    outcome: str  # passed | failed | error
    observed: float | None
    expected: str
    delta: float | None = None
    vs: str | None = None
    message: str = ""
    #: The statistics of the verdict (kind, ci, confidence, test, p_value, p_adjusted,
    #: n, mde, underpowered, needed_n, baseline), as in the results JSON.
    stats: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "variant": self.variant,
            "metric": self.metric,
            "outcome": self.outcome,
            "observed": self.observed,
            "expected": self.expected,
            "delta": self.delta,
            "vs": self.vs,
            "message": self.message,
        } | dict(self.stats)

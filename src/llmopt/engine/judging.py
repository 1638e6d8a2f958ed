"""Calls of judge metrics to their judging models, for one variant's evaluation.

A judge call is made like a call of the model under test: through the call gateway
(response cache, cache mode, budget, redaction, usage). Each judging model's provider is
created once per evaluation and bounded by its own concurrency. What the calls cost
is kept per case, apart from the usage of the model under test.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import MetricError, ProviderUnavailable
from .calls import Call, ModelCalls, response_usage
from .results import Usage

if TYPE_CHECKING:
    from ..dataset import Case
    from ..provider import Provider, Request, Response
    from ..registry import Registry
    from ..spec._model import ModelSpec

__all__ = ["JudgeCalls", "CaseJudging"]


class JudgeCalls:
    """The judging models of one evaluation: their providers and bounds; the calls go
    through the run's gateway."""

    def __init__(self, registry: "Registry", calls: ModelCalls, base_dir: Path, where: str) -> None:
        self.registry = registry
        self.calls = calls
        self.base_dir = base_dir
        self.where = where
        self._providers: dict[str, "Provider"] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}

    def for_case(self, case: "Case") -> "CaseJudging":
        return CaseJudging(self, case)

    async def call(self, spec: "ModelSpec", request: "Request", what: str) -> "Response":
        """The judging model's response to ``request`` (through the gateway, bounded by
        the judging model's own concurrency)."""
        key = _key(spec)
        provider = self._provider(spec, key, what)
        try:
            return await self.calls.call(Call(provider, spec.provider, request, what, "judge", self._gates[key]))
        except ProviderUnavailable as exc:  # stops the variant: say it was the judge
            raise type(exc)(f"{what}: the judge failed: {exc}") from None

    async def aclose(self) -> None:
        """Close the judging models' clients (hosted providers hold one per loop)."""
        for provider in self._providers.values():
            await provider.aclose()

    def _provider(self, spec: "ModelSpec", key: str, what: str) -> "Provider":
        if key not in self._providers:
            ptype = self.registry.providers.get(spec.provider)
            if ptype is None:
                known = ", ".join(sorted(self.registry.providers))
                raise MetricError(f"{what}: unknown judge provider {spec.provider!r} (known: {known})")
            problems = ptype.check(spec, self.base_dir)
            if problems:
                named = "; ".join(p.replace("model.", "judge.") for p in problems)
                raise MetricError(f"{what}: the judge is not usable: {named}")
            from ..provider import declared_provider

            self._providers[key] = declared_provider(ptype.create(spec, self.base_dir))
            self._gates[key] = asyncio.Semaphore(max(1, int(self._providers[key].concurrency or 1)))
        return self._providers[key]


class CaseJudging:
    """The judge calls of one case: verdicts by metric key and their usage."""

    def __init__(self, calls: JudgeCalls, case: "Case") -> None:
        self.calls = calls
        self.case = case
        self.judges: dict[str, dict[str, Any]] = {}
        self.usage = Usage()

    def scope(self, key: str) -> "_MetricJudging":
        """The context a judge metric scored under ``key`` is given."""
        return _MetricJudging(self, key)


class _MetricJudging:
    """A :class:`llmopt.metric.JudgeContext` for one metric of one case."""

    def __init__(self, owner: CaseJudging, key: str) -> None:
        self.owner = owner
        self.key = key

    async def ask(self, judge: "ModelSpec", messages: Sequence[Mapping[str, str]]) -> str:
        from ..provider import Request

        case = self.owner.case
        what = f"{self.owner.calls.where} case {case.id!r} metric {self.key!r}"
        request = Request(
            messages=[dict(m) for m in messages], prompt=messages[-1]["content"], case=case, params=dict(judge.params)
        )
        response = await self.owner.calls.call(judge, request, what)
        self.owner.usage = self.owner.usage + response_usage(response)
        return response.text

    def note(self, verdict: str, score: float, reason: str) -> None:
        """Keep a verdict; with ``task.repeat`` every generation's verdict is kept, in
        order, under ``repeats`` (the top-level fields are the last one's)."""
        entry = {"verdict": verdict, "score": round(score, 4), "reason": reason}
        previous = self.owner.judges.get(self.key)
        if previous is None:
            self.owner.judges[self.key] = entry
            return
        earlier = previous.get("repeats") or [{k: previous[k] for k in ("verdict", "score", "reason")}]
        self.owner.judges[self.key] = {**entry, "repeats": [*earlier, entry]}


def _key(spec: "ModelSpec") -> str:
    return json.dumps(asdict(spec), sort_keys=True, default=str)

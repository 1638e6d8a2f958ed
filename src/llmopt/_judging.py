"""Calls of judge metrics to their judging models, for one variant's evaluation.

A judge call is made like a call of the model under test: through the response cache
(honouring the cache mode) and the run's budget. Each judging model's provider is
created once per evaluation and bounded by its own concurrency. What the calls cost
is kept per case, apart from the usage of the model under test.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .errors import CacheMiss, MetricError, ProviderUnavailable
from .results import Usage

if TYPE_CHECKING:
    from .budget import Budget
    from .cache import ResponseCache
    from .dataset import Case
    from .provider import Provider, Request, Response
    from .registry import Registry
    from .spec._model import ModelSpec

__all__ = ["JudgeCalls", "CaseJudging"]


class JudgeCalls:
    """The judging models of one evaluation: providers, bounds, cache and budget."""

    def __init__(
        self,
        registry: "Registry",
        cache: "ResponseCache | None",
        cache_mode: str,
        budget: "Budget | None",
        base_dir: Path,
        where: str,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.cache_mode = cache_mode
        self.budget = budget
        self.base_dir = base_dir
        self.where = where
        self._providers: dict[str, "Provider"] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}

    def for_case(self, case: "Case") -> "CaseJudging":
        return CaseJudging(self, case)

    async def call(self, spec: "ModelSpec", request: "Request", what: str) -> "Response":
        """The judging model's response to ``request`` (cached, budgeted, bounded)."""
        key = _key(spec)
        provider = self._provider(spec, key, what)
        cache_key = self._cache_key(spec, provider, request)
        if cache_key is not None and self.cache_mode != "refresh":
            hit = self.cache.get(cache_key)  # type: ignore[union-attr]
            if hit is not None:
                return hit
        if cache_key is not None and self.cache_mode == "replay":
            raise CacheMiss(f"{what}: no cached verdict and --llmopt-cache=replay makes no calls")
        if self.budget is not None and not getattr(provider, "free", False):
            self.budget.before_call(what)
        async with self._gates[key]:
            try:
                response = await provider.generate(request)
            except ProviderUnavailable as exc:  # stops the variant: say it was the judge
                raise type(exc)(f"{what}: the judge failed: {exc}") from None
        if self.budget is not None:
            self.budget.add(response.cost_usd)
        if cache_key is not None:
            self.cache.put(cache_key, response)  # type: ignore[union-attr]
        return response

    async def aclose(self) -> None:
        """Close the judging models' clients (hosted providers hold one per loop)."""
        for provider in self._providers.values():
            closer = getattr(provider, "aclose", None)
            if closer is not None:
                await closer()

    def _provider(self, spec: "ModelSpec", key: str, what: str) -> "Provider":
        if key not in self._providers:
            ptype = self.registry.providers.get(spec.provider)
            if ptype is None:
                known = ", ".join(sorted(self.registry.providers))
                raise MetricError(f"{what}: unknown judge provider {spec.provider!r} (known: {known})")
            problems = ptype.check(spec, self.base_dir)
            if problems:
                raise MetricError(f"{what}: the judge is not usable: " + "; ".join(p.replace("model.", "judge.") for p in problems))
            self._providers[key] = ptype.create(spec, self.base_dir)
            self._gates[key] = asyncio.Semaphore(max(1, int(self._providers[key].concurrency or 1)))
        return self._providers[key]

    def _cache_key(self, spec: "ModelSpec", provider: "Provider", request: "Request") -> str | None:
        if self.cache is None or not provider.cacheable:
            return None
        from .cache import request_identity

        include_case = bool(getattr(provider, "cache_includes_case", False))
        identity = request_identity(spec.provider, provider.identity(), request, include_case=include_case)
        return self.cache.key(identity)


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
        from .provider import Request

        case = self.owner.case
        what = f"{self.owner.calls.where} case {case.id!r} metric {self.key!r}"
        request = Request(messages=[dict(m) for m in messages], prompt=messages[-1]["content"], case=case, params=dict(judge.params))
        response = await self.owner.calls.call(judge, request, what)
        self.owner.usage = self.owner.usage + _usage(response)
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


def _usage(r: "Response") -> Usage:
    spent, saved = (0.0, r.cost_usd) if r.cached else (r.cost_usd, 0.0)
    return Usage(r.input_tokens, r.output_tokens, spent, int(r.cached), int(not r.cached), saved)


def _key(spec: "ModelSpec") -> str:
    return json.dumps(asdict(spec), sort_keys=True, default=str)

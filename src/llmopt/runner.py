"""Evaluates one variant of a scenario: every case, concurrently, with errors kept apart.

The runner is the engine behind the pytest plugin and is usable without pytest::

    runner = Runner(create_registry(), ResponseCache(Path(".llmopt/cache")))
    result = runner.evaluate(load_scenario(Path("specs/faq.yaml")), "rag")
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Protocol, Sequence, TypeVar

from .errors import (
    BudgetExceeded,
    CacheMiss,
    DatasetError,
    LLMOptError,
    MetricError,
    ProviderError,
    ProviderUnavailable,
    RenderError,
)
from .recipe import Renderer
from .results import CaseResult, MetricValue, Usage, VariantResult
from .stats import bootstrap_interval, consistency, mean_interval, reduce_scores

if TYPE_CHECKING:
    from ._judging import CaseJudging, JudgeCalls
    from .budget import Account, Budget
    from .cache import ResponseCache
    from .dataset import Case
    from .metric import Metric, Sample
    from .provider import Provider, Request, Response
    from .registry import Registry
    from .retrieval import Hit, Index, RetrievalSession
    from .spec import RecipeSpec, Scenario, VariantSpec

T = TypeVar("T")
CaseListener = Callable[[CaseResult], None]


class EvaluationListener(Protocol):
    """Follows an evaluation as it runs (the terminal progress note is one)."""

    def started(self, scenario: str, variant: str, total: int) -> None: ...

    def case_done(self, result: CaseResult) -> None: ...

    def finished(self) -> None: ...

#: How the response cache is used: read and write ("on"), answers only from the cache
#: with a miss as an error ("replay"), or call again and overwrite ("refresh").
CACHE_MODES = ("on", "replay", "refresh")
#: Cases in flight at once for a retrieval-only variant (no provider to bound them).
RETRIEVAL_CONCURRENCY = 8


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    Uses ``asyncio.run`` normally; when an event loop is already running in this thread
    (pytest-asyncio, notebooks), runs it on a fresh loop in a worker thread instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmopt-eval") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]


@dataclass(frozen=True)
class _MetricUse:
    key: str
    metric: "Metric"
    args: Mapping[str, Any]


@dataclass(frozen=True)
class _Plan:
    """What evaluating one variant needs, resolved once."""

    scenario: "Scenario"
    variant: "VariantSpec"
    #: None for a retrieval-only variant (``model: null``).
    provider: "Provider | None"
    metrics: tuple[_MetricUse, ...]
    index: "Index | None"
    #: The judging models of judge metrics (None when no metric asks one).
    judging: "JudgeCalls | None" = None

    @property
    def where(self) -> str:
        return f"{self.scenario.path.name} [{self.scenario.id}::{self.variant.name}]"


class Runner:
    """Evaluates variants; memoizes results per (spec, scenario, variant)."""

    def __init__(
        self,
        registry: "Registry",
        cache: "ResponseCache | None" = None,
        *,
        cache_mode: str = "on",
        budget: "Budget | None" = None,
        listener: EvaluationListener | None = None,
    ) -> None:
        if cache_mode not in CACHE_MODES:
            raise ValueError(f"cache_mode must be one of {CACHE_MODES}, got {cache_mode!r}")
        self.registry = registry
        self.cache = cache
        self.cache_mode = cache_mode
        self.budget = budget
        self.listener = listener
        self._renderer = Renderer()
        self._providers: dict[str, "Provider"] = {}
        self._retrieval: "RetrievalSession | None" = None
        #: What retrieval's own calls (embeddings) use, under the run's budget.
        self._retrieval_account: "Account | None" = None
        self._memo: dict[tuple[str, str, str], VariantResult | LLMOptError] = {}
        self._lock = threading.Lock()

    def evaluate(self, scenario: "Scenario", variant: str) -> VariantResult:
        """The result of ``variant`` (memoized; a failure is remembered and re-raised)."""
        key = (str(scenario.path), scenario.id, variant)
        with self._lock:
            if key not in self._memo:
                try:
                    self._memo[key] = run_sync(lambda: self.aevaluate(scenario, variant))
                except LLMOptError as exc:
                    self._memo[key] = exc
        found = self._memo[key]
        if isinstance(found, LLMOptError):
            raise found
        return found

    async def aevaluate(self, scenario: "Scenario", variant: str) -> VariantResult:
        """Evaluate ``variant`` now (not memoized)."""
        from .dataset import load_cases

        started = time.perf_counter()
        retrieval_before = self._account().usage
        plan = self._plan(scenario, variant)
        cases = load_cases(plan.variant.task, scenario.path)
        self._check_relevant(plan, cases)
        _check_cluster(plan, cases)
        limit = plan.provider.concurrency if plan.provider is not None else RETRIEVAL_CONCURRENCY
        gate = asyncio.Semaphore(max(1, limit))
        listener = self.listener

        async def bounded(case: "Case") -> CaseResult:
            async with gate:
                result = await self._case(plan, case)
            if listener is not None:
                listener.case_done(result)
            return result

        if listener is not None:
            listener.started(scenario.id, variant, len(cases))
        try:
            results = await asyncio.gather(*(bounded(c) for c in cases))
        finally:
            if listener is not None:
                listener.finished()
            closer = getattr(plan.provider, "aclose", None) if plan.provider is not None else None
            if closer is not None:
                await closer()
            if plan.judging is not None:
                await plan.judging.aclose()
            index_closer = getattr(plan.index, "aclose", None)
            if index_closer is not None:
                await index_closer()
        result = self._variant_result(plan, results, time.perf_counter() - started, cases)
        retrieval = self._account().usage - retrieval_before
        if retrieval.calls or retrieval.cache_hits:
            from dataclasses import replace

            result = replace(result, retrieval_usage=retrieval)
        return result

    def _account(self) -> "Account":
        if self._retrieval_account is None:
            from .budget import Account

            self._retrieval_account = Account(self.budget)
        return self._retrieval_account

    # -- planning -------------------------------------------------------------------

    def _plan(self, scenario: "Scenario", variant: str) -> _Plan:
        spec = scenario.variants[variant]
        metrics = tuple(
            _MetricUse(key, self.registry.metrics[name], args)
            for key, (name, args) in scenario.metrics_for(variant).items()
        )
        index = self._index(spec, scenario) if spec.retrieval is not None else None
        plan = _Plan(scenario, spec, self._provider(spec, scenario), metrics, index)
        if not any(hasattr(use.metric, "ascore") for use in metrics):
            return plan
        from dataclasses import replace

        from ._judging import JudgeCalls

        judging = JudgeCalls(self.registry, self.cache, self.cache_mode, self.budget, scenario.base_dir, plan.where)
        return replace(plan, judging=judging)

    def _provider(self, spec: "VariantSpec", scenario: "Scenario") -> "Provider | None":
        if spec.model is None:
            return None
        key = json.dumps([asdict(spec.model), str(scenario.base_dir)], sort_keys=True, default=str)
        if key not in self._providers:
            ptype = self.registry.providers[spec.model.provider]
            self._providers[key] = ptype.create(spec.model, scenario.base_dir)
        return self._providers[key]

    def _check_relevant(self, plan: _Plan, cases: Sequence["Case"]) -> None:
        """DatasetError when a case names a relevant document that the source lacks."""
        retrieval = plan.variant.retrieval
        field = plan.variant.task.relevant_field
        if retrieval is None or retrieval.source is None or field is None:
            return
        from .retrieval import load_chunks

        built = self._retrieval.chunks_of(plan.index) if self._retrieval is not None and plan.index is not None else None
        chunks = built if built is not None else load_chunks(retrieval, plan.scenario.base_dir)
        known = {chunk.doc_id for chunk in chunks}
        problems = [
            f"  case {case.id!r} ({case.source}): unknown document {doc!r}"
            for case in cases
            for doc in case.relevant or ()
            if doc not in known
        ]
        if problems:
            raise DatasetError(_unknown_relevant(plan, field, retrieval.source, problems, sorted(known)))

    def _index(self, spec: "VariantSpec", scenario: "Scenario") -> "Index":
        from .retrieval import RetrievalSession

        if self._retrieval is None:
            indexes = self.cache.directory / "indexes" if self.cache is not None else None
            self._retrieval = RetrievalSession(
                self.registry.retrievers, cache_dir=indexes, response_cache=self.cache, account=self._account()
            )
        assert spec.retrieval is not None
        return self._retrieval.index_for(spec.retrieval, scenario.base_dir)

    # -- one case -------------------------------------------------------------------

    async def _case(self, plan: _Plan, case: "Case") -> CaseResult:
        if plan.provider is None:
            return await self._retrieval_case(plan, case)
        shown = _input_text(plan, case)
        recipe = _recipe_ref(plan.variant.recipe)
        judging = plan.judging.for_case(case) if plan.judging is not None else None
        responses: list["Response"] = []
        try:
            variables, retrieved = await self._variables(plan, case)
            prompt = self._renderer.render(plan.variant.recipe, variables, f"{plan.where} case {case.id!r}")
            shown = _input_text(plan, case, prompt.user)
            for r in range(plan.variant.task.repeat):
                responses.append(await self._generate(plan, case, prompt, variables.get("context"), r))
            scores, agreement = await _score(
                plan.metrics, case, responses, retrieved, plan.variant.task.reduce, shown, variables.get("context"), judging
            )
        except ProviderUnavailable:
            raise
        except (ProviderError, RenderError, MetricError, BudgetExceeded, CacheMiss) as exc:
            failed = CaseResult(
                id=case.id, input=shown, expected=case.expected, error=str(exc), relevant=case.relevant, recipe=recipe,
                cluster=_cluster(plan, case),
                usage=_response_usage(responses),  # what was generated before the failure was paid for
            )
            return _judged(failed, judging)
        return CaseResult(
            id=case.id,
            input=shown,
            expected=case.expected,
            recipe=recipe,
            prompt_hash=prompt.hash,
            outputs=tuple(r.text for r in responses),
            latencies_s=tuple(r.latency_s for r in responses),
            scores=scores,
            cached=sum(1 for r in responses if r.cached),
            retrieved=retrieved,
            relevant=case.relevant,
            usage=_response_usage(responses),
            served=_served(responses[0]) if responses else {},
            consistency=agreement,
            cluster=_cluster(plan, case),
            **_judge_fields(judging),
        )

    async def _retrieval_case(self, plan: _Plan, case: "Case") -> CaseResult:
        """A case of a retrieval-only variant: retrieve and score, generate nothing."""
        shown = _input_text(plan, case)
        judging = plan.judging.for_case(case) if plan.judging is not None else None
        try:
            variables, retrieved = await self._variables(plan, case)
            scores, _ = await _score(plan.metrics, case, (), retrieved, "mean", shown, variables.get("context"), judging)
        except ProviderUnavailable:
            raise
        except (ProviderError, RenderError, MetricError, BudgetExceeded, CacheMiss) as exc:
            failed = CaseResult(
                id=case.id, input=shown, expected=case.expected, error=str(exc), relevant=case.relevant,
                cluster=_cluster(plan, case),
            )
            return _judged(failed, judging)
        return CaseResult(
            id=case.id, input=shown, expected=case.expected, scores=scores, retrieved=retrieved, relevant=case.relevant,
            cluster=_cluster(plan, case),
            **_judge_fields(judging),
        )

    async def _variables(self, plan: _Plan, case: "Case") -> tuple[dict[str, Any], tuple[Mapping[str, Any], ...]]:
        variables: dict[str, Any] = dict(case.fields)
        variables.setdefault("context", None)
        if plan.index is None or plan.variant.retrieval is None:
            return variables, ()
        from .retrieval import template_variables

        asearch = getattr(plan.index, "asearch", None)  # embeddings: awaited in this loop
        query, top_k = self._query(plan, case), plan.variant.retrieval.top_k
        hits = await asearch(query, top_k) if asearch is not None else plan.index.search(query, top_k)
        variables.update(template_variables(hits))
        return variables, tuple(_hit_entry(h) for h in hits)

    def _query(self, plan: _Plan, case: "Case") -> str:
        from .spec._model import RecipeSpec

        retrieval = plan.variant.retrieval
        assert retrieval is not None
        template = retrieval.options.get("query") or "{{ %s }}" % (plan.variant.task.input_field or "question")
        rendered = self._renderer.render(RecipeSpec(template=template), dict(case.fields), f"{plan.where} case {case.id!r}")
        return rendered.user

    async def _generate(self, plan: _Plan, case: "Case", prompt: Any, context: str | None, repeat: int) -> "Response":
        from .provider import Request

        assert plan.provider is not None and plan.variant.model is not None
        request = Request(
            messages=prompt.messages,
            prompt=prompt.user,
            case=case,
            context=context,
            params=dict(plan.variant.model.params),
            repeat=repeat,
        )
        cache_key = self._cache_key(plan, request)
        if cache_key is not None and self.cache_mode != "refresh":
            hit = self.cache.get(cache_key)  # type: ignore[union-attr]
            if hit is not None:
                return hit
        if cache_key is not None and self.cache_mode == "replay":
            raise CacheMiss(
                f"{plan.where} case {case.id!r}: no cached answer (repeat {repeat}) and "
                "--llmopt-cache=replay makes no calls: record it with a run in the default mode"
            )
        if self.budget is not None and not getattr(plan.provider, "free", False):
            self.budget.before_call(f"{plan.where} case {case.id!r}")
        response = await plan.provider.generate(request)
        if self.budget is not None:
            self.budget.add(response.cost_usd)
        if cache_key is not None:
            self.cache.put(cache_key, response)  # type: ignore[union-attr]
        return response

    def _cache_key(self, plan: _Plan, request: "Request") -> str | None:
        if self.cache is None or plan.provider is None or plan.variant.model is None or not plan.provider.cacheable:
            return None
        from .cache import request_identity

        include_case = bool(getattr(plan.provider, "cache_includes_case", False))
        identity = request_identity(
            plan.variant.model.provider, plan.provider.identity(), request, include_case=include_case
        )
        return self.cache.key(identity)

    # -- aggregation ----------------------------------------------------------------

    def _variant_result(
        self, plan: _Plan, cases: Sequence[CaseResult], duration: float, loaded: Sequence["Case"]
    ) -> VariantResult:
        from .identity import identity_hash, variant_identity

        metrics = {use.key: (use.metric.name, use.args) for use in plan.metrics}
        served = {**_serving(plan.provider), **plan.provider.identity()} if plan.provider is not None else None
        identity = variant_identity(plan.variant, plan.scenario.base_dir, loaded, metrics, served)
        return VariantResult(
            scenario=plan.scenario.id,
            variant=plan.variant.name,
            cases=tuple(cases),
            metrics={use.key: v for use in plan.metrics if (v := aggregate(use, cases)) is not None},
            usage=_usage(cases),
            identity=identity,
            duration_s=duration,
            identity_hash=identity_hash(identity),
            judge_usage=_judge_usage(cases) if plan.judging is not None else None,
        )


def _input_text(plan: _Plan, case: "Case", rendered: str | None = None) -> str:
    field = plan.variant.task.input_field
    if field and field in case.fields:
        return str(case.fields[field])
    return rendered if rendered is not None else ""


def _hit_entry(hit: "Hit") -> dict[str, Any]:
    return {"id": hit.chunk.id, "doc_id": hit.chunk.doc_id, "score": round(hit.score, 4)}


def _documents(retrieved: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The document ids of retrieved chunks, best first, each once."""
    return tuple(dict.fromkeys(str(r["doc_id"]) for r in retrieved))


async def _score(
    metrics: Sequence[_MetricUse],
    case: "Case",
    responses: Sequence["Response"],
    retrieved: Sequence[Mapping[str, Any]] = (),
    reduce: str = "mean",
    shown: str = "",
    context: str | None = None,
    judging: "CaseJudging | None" = None,
) -> tuple[dict[str, float], float | None]:
    """Each metric's score of the case, its generations' scores reduced by ``reduce``
    (task.reduce), and how consistent the generations were (None for one). A metric
    with ``ascore`` (a judge) is awaited with the case's judging context."""
    from .metric import Sample

    docs = _documents(retrieved)
    common = {"retrieved": docs, "input": shown, "context": context}
    samples = [
        Sample(case=case, output=r.text, latency_s=r.latency_s, cost_usd=r.cost_usd, **common) for r in responses
    ] or [Sample(case=case, output="", **common)]
    per_repeat: dict[str, list[float]] = {}
    for use in metrics:
        ascore = getattr(use.metric, "ascore", None)
        if ascore is not None and judging is not None:
            per_repeat[use.key] = [float(await ascore(s, use.args, judging.scope(use.key))) for s in samples]
        else:
            per_repeat[use.key] = [float(use.metric.score(s, use.args)) for s in samples]
    scores = {key: reduce_scores(values, reduce) for key, values in per_repeat.items()}
    return scores, consistency(per_repeat, [r.text for r in responses]) if len(samples) > 1 else None


def _judge_fields(judging: "CaseJudging | None") -> dict[str, Any]:
    """A case's judge verdicts and judge usage, as CaseResult fields."""
    return {} if judging is None else {"judges": dict(judging.judges), "judge_usage": judging.usage}


def _judged(result: CaseResult, judging: "CaseJudging | None") -> CaseResult:
    """An errored case keeps what its judge calls used (they were paid for)."""
    from dataclasses import replace

    return replace(result, **_judge_fields(judging)) if judging is not None else result


def _judge_usage(cases: Sequence[CaseResult]) -> Usage:
    total = Usage()
    for case in cases:
        total = total + case.judge_usage
    return total


def case_samples(case: CaseResult) -> list["Sample"]:
    """The samples of a scored case, rebuilt for aggregation."""
    from .dataset import Case
    from .metric import Sample

    source = Case(id=case.id, expected=case.expected, relevant=case.relevant)
    docs = case.retrieved_documents
    pairs = zip(case.outputs, case.latencies_s)
    samples = [Sample(case=source, output=o, latency_s=l, retrieved=docs) for o, l in pairs]
    return samples or [Sample(case=source, output="", retrieved=docs)]


def aggregate(use: _MetricUse, cases: Sequence[CaseResult]) -> MetricValue | None:
    """Aggregate one metric over the cases without errors, with its standard error and
    95% interval: analytic for means (Wilson, t, cluster-robust), bootstrap otherwise."""
    from .metric import is_mean_aggregate

    scored = [c for c in cases if c.error is None and use.key in c.scores]
    if not scored:
        return None
    clusters = [c.cluster for c in scored] if scored[0].cluster is not None else None
    if is_mean_aggregate(use.metric):
        interval = mean_interval([c.scores[use.key] for c in scored], clusters=clusters)
    else:
        groups = prepared(scored, use.key)
        interval = bootstrap_interval(groups, lambda g: aggregate_prepared(use.metric, use.args, g), clusters=clusters)
    ci = (interval.low, interval.high) if interval.low is not None and interval.high is not None else None
    return MetricValue(interval.value, len(scored), ci, interval.se, interval.method, interval.clusters)


Prepared = tuple[list["Sample"], list[float]]


def prepared(cases: Sequence[CaseResult], key: str) -> list[Prepared]:
    """Each case's samples and scores, built once for repeated aggregation."""
    out: list[Prepared] = []
    for case in cases:
        samples = case_samples(case)
        out.append((samples, [case.scores[key]] * len(samples)))
    return out


def aggregate_prepared(metric: "Metric", args: Mapping[str, Any], group: Sequence[Prepared]) -> float:
    """The metric's own aggregate over prepared cases."""
    samples = [s for case_samples_, _ in group for s in case_samples_]
    scores = [x for _, case_scores in group for x in case_scores]
    return float(metric.aggregate(samples, scores, args))


def _served(response: "Response") -> dict[str, Any]:
    """What the server said about itself (reported model, fingerprint, stop reason)."""
    served = {"model": response.model} if response.model else {}
    return served | {k: v for k, v in response.metadata.items() if v is not None}


def _response_usage(responses: Sequence["Response"]) -> Usage:
    total = Usage()
    for r in responses:
        spent, saved = (0.0, r.cost_usd) if r.cached else (r.cost_usd, 0.0)
        total = total + Usage(r.input_tokens, r.output_tokens, spent, int(r.cached), int(not r.cached), saved)
    return total


def _usage(cases: Sequence[CaseResult]) -> Usage:
    total = Usage()
    for case in cases:
        total = total + case.usage
    return total


def _cluster(plan: _Plan, case: "Case") -> str | None:
    field = plan.variant.task.cluster_field
    return None if field is None else str(case.fields.get(field))


def _check_cluster(plan: _Plan, cases: Sequence["Case"]) -> None:
    """DatasetError when task.cluster names a field that some cases lack."""
    field = plan.variant.task.cluster_field
    missing = [case for case in cases if field is not None and case.fields.get(field) is None]
    if missing:
        shown = ", ".join(f"{c.id!r} ({c.source})" for c in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatasetError(f"{plan.where}: task.cluster field {field!r} is missing in case {shown}{more}")


def _recipe_ref(recipe: "RecipeSpec") -> dict[str, Any] | None:
    """``{"name", "version"}`` of a recipe from the recipes folder, for each case."""
    return {"name": recipe.name, "version": recipe.version} if recipe.name is not None else None


def _serving(provider: "Provider | None") -> dict[str, Any]:
    """How the provider produces answers (engine, precision, adapter) when it says."""
    served = getattr(provider, "served", None)
    if served is None:
        return {}
    try:
        return dict(served())
    except LLMOptError:  # the provider cannot run: its cases already carry the error
        return {}


def _unknown_relevant(plan: _Plan, field: str, source: str, problems: list[str], known: list[str]) -> str:
    shown = ", ".join(known[:5]) + (f", ... ({len(known)} documents)" if len(known) > 5 else "")
    head = f"{plan.where}: task.relevant (field {field!r}) names documents that are not in retrieval.source {source}:"
    lines = [head]
    lines += problems[:10] + ([f"  ... and {len(problems) - 10} more"] if len(problems) > 10 else [])
    return "\n".join(lines + [f"known documents: {shown or 'none'}"])

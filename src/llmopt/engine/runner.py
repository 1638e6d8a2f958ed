"""Evaluates one variant of a scenario: every case, concurrently, with errors kept apart.

The runner is the engine behind the pytest plugin and is usable without pytest::

    runner = Runner(create_registry(), ResponseCache(Path(".llmopt/cache")))
    result = runner.evaluate(load_scenario(Path("specs/faq.yaml")), "rag")

It evaluates and never gates: every model call goes through the call gateway
(:mod:`llmopt.engine.calls`), every prompt through the recipe's prompt builder, and
aggregation of scores into metric values is :mod:`llmopt.metric`'s.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, Mapping, Protocol, Sequence, TypeVar, cast

from ..errors import DatasetError, LLMOptError, ProviderUnavailable
from ..metric._values import aggregate
from ..recipe import Renderer, build_prompt, case_variables
from ..stats import consistency, reduce_scores
from ._case_errors import case_error, metric_failure
from .calls import CACHE_MODES, Call, ModelCalls, response_usage
from .results import CaseResult, MetricValue, Usage, VariantResult

if TYPE_CHECKING:
    from ..dataset import Case
    from ..dataset._shard import Shard
    from ..metric import Metric, Sample
    from ..provider import Provider, Response
    from ..recipe import RenderedPrompt
    from ..registry import Registry
    from ..retrieval import Hit, Index, RetrievalSession
    from ..spec import ModelSpec, RecipeSpec, Scenario, VariantSpec
    from .budget import Budget
    from .cache import ResponseCache
    from .demos import DemoPlan
    from .judging import CaseJudging, JudgeCalls

T = TypeVar("T")
_Item = TypeVar("_Item")
_Done = TypeVar("_Done")


class EvaluationListener(Protocol):
    """Follows an evaluation as it runs (the terminal progress note is one)."""

    def started(self, scenario: str, variant: str, total: int) -> None: ...

    def case_done(self, result: CaseResult) -> None: ...

    def finished(self) -> None: ...

__all__ = ["CACHE_MODES", "EvaluationListener", "Runner", "run_sync"]
#: Cases in flight at once for a retrieval-only variant (no provider to bound them).
RETRIEVAL_CONCURRENCY = 8


async def in_turn(
    items: Sequence[_Item], limit: int, work: Callable[[_Item], Awaitable[_Done]]
) -> list[_Done]:
    """``work`` on every item, at most ``limit`` at a time, in order; the results in the
    items' order. ``limit`` workers take the next item as they finish one, so a run of
    100,000 cases holds ``limit`` coroutines, not one task per case (the garbage
    collector walks each of them, about 0.3 ms a case at that size, bench/scale.py).
    The first exception cancels the other workers and is raised. Meanwhile the
    collector runs less often (see :func:`fewer_collections`)."""
    results: list[_Done | None] = [None] * len(items)
    order = iter(enumerate(items))

    async def worker() -> None:
        for position, item in order:
            results[position] = await work(item)

    with fewer_collections():
        workers = [asyncio.ensure_future(worker()) for _ in range(min(limit, len(items)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
    return cast("list[_Done]", results)


#: The cyclic collector's first threshold while cases are evaluated (Python's: 700).
YOUNG_THRESHOLD = 100_000
#: Collections of the middle generation between two of the oldest while cases are
#: evaluated (Python's: 10).
OLD_THRESHOLD = 100


class _Collector:
    """Who asked for fewer collections, and the thresholds to give back."""

    lock = threading.Lock()
    users = 0
    before: tuple[int, ...] = ()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector after every 100,000 new objects instead of 700,
    and walk the whole heap after every 100 collections of the middle generation
    instead of 10, within the block (and within any block of another thread that
    overlaps it); the thresholds come back when the last block ends. Each collection
    walks every live young object, and the requests in flight (hundreds, each with its
    SDK's objects) are always there: at 700 the collector took 16% of the CPU of a
    20,000-case run, at 10,000 still 3% of a hosted run (2.3 s of gen-0 walks at
    100,000 cases), at 100,000 a third of that. The finished cases' results, kept to
    the end, made each walk of the whole heap longer: 9 walks took 0.9 s of a
    100,000-case run (bench/scale.py). Garbage cycles are still collected, young ones
    at most 100,000 objects later."""
    with _Collector.lock:
        if _Collector.users == 0:
            _Collector.before = gc.get_threshold()
            young, middle, old = _Collector.before
            gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, max(old, OLD_THRESHOLD))
        _Collector.users += 1
    try:
        yield
    finally:
        with _Collector.lock:
            _Collector.users -= 1
            if _Collector.users == 0:
                gc.set_threshold(*_Collector.before)


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    Uses ``asyncio.run`` normally; when an event loop is already running in this thread
    (pytest-asyncio, notebooks), runs it on a fresh loop in a worker thread instead.
    The coroutine's result is handed back beside the task, never as its result: on
    the main thread ``asyncio.run`` looks up its Ctrl-C handler when it ends, and
    Python 3.11 then builds the repr of the handler, of the task in it and of the
    task's result, which for a variant of 100,000 cases took 2 s (bench/scale.py).
    """
    box: list[T] = []

    async def kept() -> None:
        box.append(await factory())

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(kept())
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmopt-eval") as pool:
            pool.submit(lambda: asyncio.run(kept())).result()
    return box[0]


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
    #: The recipe's demonstrations (None without ``recipe.demos``).
    demos: "DemoPlan | None" = None
    #: Why the demonstrations could not be drawn: every case's error then.
    demos_error: str | None = None

    @cached_property
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
        calls: ModelCalls | None = None,
        shard: "Shard | None" = None,
    ) -> None:
        self.registry = registry
        #: The one gateway of every model call this runner makes.
        self.calls = calls if calls is not None else ModelCalls(cache, cache_mode, budget)
        self.listener = listener
        #: Only the cases of this shard are evaluated (``--llmopt-shard K/N``).
        self.shard = shard
        self._renderer = Renderer()
        self._providers: dict[str, "Provider"] = {}
        self._retrieval: "RetrievalSession | None" = None
        self._memo: dict[tuple[str, str, str], VariantResult | LLMOptError] = {}
        #: What helpers of this runner keep between variants (demonstration pools,
        #: a teacher's answers), by their own keys.
        self.memo: dict[str, Any] = {}
        self._lock = threading.Lock()

    def evaluate(self, scenario: "Scenario", variant: str, spec: "VariantSpec | None" = None) -> VariantResult:
        """The result of ``variant`` (memoized; a failure is remembered and re-raised).

        ``spec`` gives the variant to evaluate under that name when the scenario's own
        entry is a stand-in: the search's winner (variant ``search``).
        """
        key = (str(scenario.path), scenario.id, variant)
        with self._lock:
            if key not in self._memo:
                try:
                    self._memo[key] = run_sync(lambda: self.aevaluate(scenario, variant, spec))
                except LLMOptError as exc:
                    self._memo[key] = exc
        found = self._memo[key]
        if isinstance(found, LLMOptError):
            raise found
        return found

    async def aevaluate(self, scenario: "Scenario", variant: str, spec: "VariantSpec | None" = None) -> VariantResult:
        """Evaluate ``variant`` now (not memoized)."""
        if spec is None and scenario.search is not None and variant == "search":
            where = f"{scenario.path.name} [{scenario.id}]"
            raise LLMOptError(f"{where}: variant 'search' is the search's winner: run the search first")
        chosen = spec if spec is not None else scenario.variants[variant]
        return await self.aevaluate_spec(scenario, replace(chosen, name=variant), scenario.metrics_for(variant))

    async def aevaluate_spec(
        self,
        scenario: "Scenario",
        spec: "VariantSpec",
        metrics: Mapping[str, tuple[str, Mapping[str, Any]]],
        cases: "Sequence[Case] | None" = None,
    ) -> VariantResult:
        """Evaluate ``spec`` with ``metrics`` (key -> (name, args)) on ``cases`` (default:
        the cases its task reads): what a search does for each of its candidates."""
        from ..dataset import load_cases

        started = time.perf_counter()
        retrieval_before = self.calls.usage("embedding")
        plan = self._plan(scenario, spec, metrics)
        if cases is None:
            cases = load_cases(plan.variant.task, scenario.path, unreadable_as_cases=True)
        self._check_relevant(plan, cases)
        _check_cluster(plan, cases)
        plan = await self._with_demos(plan, cases)
        positions = self.positions(cases)
        selected = [cases[i] for i in positions]
        limit = plan.provider.concurrency if plan.provider is not None else RETRIEVAL_CONCURRENCY
        listener = self.listener

        async def one(case: "Case") -> CaseResult:
            result = await self._case(plan, case)
            if listener is not None:
                listener.case_done(result)
            return result

        if listener is not None:
            listener.started(scenario.id, spec.name, len(selected))
        try:
            results = await in_turn(selected, max(1, limit), one)
        finally:
            if listener is not None:
                listener.finished()
            if plan.provider is not None:
                await plan.provider.aclose()
            if plan.judging is not None:
                await plan.judging.aclose()
            if plan.index is not None:
                await plan.index.aclose()
            if self.cache is not None:
                self.cache.flush()  # what this evaluation paid for is on disk before its verdict
        result = self._variant_result(plan, self._placed(results, positions), time.perf_counter() - started, cases)
        retrieval = self.calls.usage("embedding") - retrieval_before
        if retrieval.calls or retrieval.cache_hits:
            result = replace(result, retrieval_usage=retrieval)
        return result

    def positions(self, cases: Sequence["Case"]) -> list[int]:
        """Where the cases this runner evaluates are among ``cases``: all, or its
        shard's (a result's identity still covers every case, so shards share it)."""
        shard = self.shard
        return list(range(len(cases))) if shard is None else [i for i, c in enumerate(cases) if shard.holds(c.id)]

    def _placed(self, results: Sequence[CaseResult], positions: Sequence[int]) -> Sequence[CaseResult]:
        """A shard's case results, each with its place among all the cases."""
        if self.shard is None:
            return results
        return [replace(r, position=i) for r, i in zip(results, positions, strict=True)]

    @property
    def cache(self) -> "ResponseCache | None":
        return self.calls.cache

    @property
    def cache_mode(self) -> str:
        return self.calls.mode

    @property
    def budget(self) -> "Budget | None":
        return self.calls.budget

    # -- planning -------------------------------------------------------------------

    def _plan(
        self, scenario: "Scenario", spec: "VariantSpec", needed: Mapping[str, tuple[str, Mapping[str, Any]]]
    ) -> _Plan:
        metrics = tuple(_MetricUse(key, self.registry.metrics[name], args) for key, (name, args) in needed.items())
        index = self._index(spec, scenario) if spec.retrieval is not None else None
        plan = _Plan(scenario, spec, self._provider(spec, scenario), metrics, index)
        if not any(use.metric.asks_model for use in metrics):
            return plan
        from .judging import JudgeCalls

        judging = JudgeCalls(self.registry, self.calls, scenario.base_dir, plan.where)
        return replace(plan, judging=judging)

    async def _with_demos(self, plan: _Plan, cases: Sequence["Case"]) -> _Plan:
        """The plan with its demonstrations drawn (or why they could not be)."""
        if plan.variant.recipe.demos is None or plan.provider is None:
            return plan
        from .demos import plan_demos

        try:
            return replace(plan, demos=await plan_demos(self, plan.scenario, plan.variant, plan.index, plan.where, cases))
        except ProviderUnavailable:
            raise
        except LLMOptError as exc:
            return replace(plan, demos_error=str(exc))

    def _provider(self, spec: "VariantSpec", scenario: "Scenario") -> "Provider | None":
        return self.model_provider(spec.model, scenario) if spec.model is not None else None

    def model_provider(self, model: "ModelSpec", scenario: "Scenario") -> "Provider":
        """The provider answering ``model`` for ``scenario`` (one per model and folder;
        callers send its calls through ``self.calls``)."""
        key = json.dumps([asdict(model), str(scenario.base_dir)], sort_keys=True, default=str)
        if key not in self._providers:
            from ..provider import declared_provider

            ptype = self.registry.providers[model.provider]
            self._providers[key] = declared_provider(ptype.create(model, scenario.base_dir))
        return self._providers[key]

    def _check_relevant(self, plan: _Plan, cases: Sequence["Case"]) -> None:
        """DatasetError when a case names a relevant document that the source lacks."""
        retrieval = plan.variant.retrieval
        field = plan.variant.task.relevant_field
        if retrieval is None or retrieval.source is None or field is None:
            return
        from ..retrieval import load_chunks

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
        from ..retrieval import RetrievalSession

        if self._retrieval is None:
            indexes = self.cache.directory / "indexes" if self.cache is not None else None
            self._retrieval = RetrievalSession(self.registry.retrievers, cache_dir=indexes, calls=self.calls)
        assert spec.retrieval is not None
        return self._retrieval.index_for(spec.retrieval, scenario.base_dir)

    # -- one case -------------------------------------------------------------------

    async def _case(self, plan: _Plan, case: "Case") -> CaseResult:
        if case.error is not None:  # a row that could not be read: this case only
            error = f"{plan.where} case {case.id!r}: {case.error}"
            return CaseResult(id=case.id, error=error, cluster=_cluster(plan, case))
        if plan.provider is None:
            return await self._retrieval_case(plan, case)
        shown = _input_text(plan, case)
        recipe = _recipe_ref(plan.variant.recipe)
        judging = plan.judging.for_case(case) if plan.judging is not None else None
        responses: list["Response"] = []
        where = f"{plan.where} case {case.id!r}"
        try:
            if plan.demos_error is not None:
                raise LLMOptError(plan.demos_error)
            demos = await plan.demos.for_case(case, where) if plan.demos is not None else ()
            built = await build_prompt(plan.variant, case, plan.index, self._renderer, where, demos)
            shown = _input_text(plan, case, built.prompt.user)
            for r in range(plan.variant.task.repeat):
                responses.append(await self._generate(plan, case, built.prompt, built.context, r))
            retrieved = tuple(_hit_entry(h) for h in built.hits)
            scores, agreement = await _score(
                plan.metrics, case, responses, retrieved, plan.variant.task.reduce, shown, built.context, judging,
                top_k=_top_k(plan),
            )
        except ProviderUnavailable:
            raise
        except Exception as exc:  # any case-level failure is that case's error, never the variant's
            failed = CaseResult(
                id=case.id, input=shown, expected=case.expected, error=case_error(exc, where), relevant=case.relevant,
                recipe=recipe, cluster=_cluster(plan, case),
                usage=_response_usage(responses),  # what was generated before the failure was paid for
            )
            return _judged(failed, judging)
        return CaseResult(
            id=case.id,
            input=shown,
            expected=case.expected,
            recipe=recipe,
            prompt_hash=built.prompt.hash,
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
        where = f"{plan.where} case {case.id!r}"
        try:
            variables, hits = await case_variables(plan.variant, case, plan.index, self._renderer, where)
            retrieved = tuple(_hit_entry(h) for h in hits)
            scores, _ = await _score(
                plan.metrics, case, (), retrieved, "mean", shown, variables.get("context"), judging, top_k=_top_k(plan)
            )
        except ProviderUnavailable:
            raise
        except Exception as exc:  # any case-level failure is that case's error
            failed = CaseResult(
                id=case.id, input=shown, expected=case.expected, error=case_error(exc, where), relevant=case.relevant,
                cluster=_cluster(plan, case),
            )
            return _judged(failed, judging)
        return CaseResult(
            id=case.id, input=shown, expected=case.expected, scores=scores, retrieved=retrieved, relevant=case.relevant,
            cluster=_cluster(plan, case),
            **_judge_fields(judging),
        )

    async def _generate(
        self, plan: _Plan, case: "Case", prompt: "RenderedPrompt", context: str | None, repeat: int
    ) -> "Response":
        from ..provider import Request

        assert plan.provider is not None and plan.variant.model is not None
        request = Request(
            messages=prompt.messages,
            prompt=prompt.user,
            case=case,
            context=context,
            params=dict(plan.variant.model.params),
            repeat=repeat,
        )
        call = Call(plan.provider, plan.variant.model.provider, request, f"{plan.where} case {case.id!r}")
        return await self.calls.call(call)

    # -- aggregation ----------------------------------------------------------------

    def _variant_result(
        self, plan: _Plan, cases: Sequence[CaseResult], duration: float, loaded: Sequence["Case"]
    ) -> VariantResult:
        from .identity import identity_hash, variant_identity

        metrics = {use.key: (use.metric.name, use.args) for use in plan.metrics}
        served = {**_serving(plan.provider), **plan.provider.identity()} if plan.provider is not None else None
        identity = variant_identity(plan.variant, plan.scenario.base_dir, loaded, metrics, served)
        if plan.demos is not None:
            identity["demos"] = plan.demos.identity()
        return VariantResult(
            scenario=plan.scenario.id,
            variant=plan.variant.name,
            cases=tuple(cases),
            metrics=_metric_values(plan.metrics, cases),
            usage=_usage(cases),
            identity=identity,
            duration_s=duration,
            identity_hash=identity_hash(identity),
            judge_usage=_judge_usage(cases) if plan.judging is not None else None,
            demos=plan.demos.to_json() if plan.demos is not None else None,
            demos_usage=plan.demos.usage if plan.demos is not None and (plan.demos.usage.calls or
                                                                         plan.demos.usage.cache_hits) else None,
        )


def _metric_values(metrics: Sequence[_MetricUse], cases: Sequence[CaseResult]) -> dict[str, MetricValue]:
    """Each metric's value over the cases, as the metrics aggregate them."""
    values: dict[str, MetricValue] = {}
    for use in metrics:
        found = aggregate(use.metric, use.args, use.key, cases)
        if found is not None:
            i = found.interval
            values[use.key] = MetricValue(
                i.value, found.n, found.ci, i.se, i.method, i.clusters, use.metric.higher_is_better
            )
    return values


def _top_k(plan: _Plan) -> int | None:
    """The variant's retrieval depth (None without retrieval)."""
    return plan.variant.retrieval.top_k if plan.variant.retrieval is not None else None


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
    *,
    top_k: int | None = None,
) -> tuple[dict[str, float], float | None]:
    """Each metric's score of the case, its generations' scores reduced by ``reduce``
    (task.reduce), and how consistent the generations were (None for one). A metric
    with ``ascore`` (a judge) is awaited with the case's judging context."""
    from ..metric import Sample

    sample = partial(Sample, case=case, retrieved=_documents(retrieved), input=shown, context=context, top_k=top_k)
    samples = [sample(output=r.text, latency_s=r.latency_s, cost_usd=r.cost_usd) for r in responses] or [sample(output="")]
    per_repeat: dict[str, list[float]] = {}
    for use in metrics:
        ctx = judging.scope(use.key) if use.metric.asks_model and judging is not None else None
        per_repeat[use.key] = [await _one_score(use, s, ctx) for s in samples]
    scores = {key: reduce_scores(values, reduce) for key, values in per_repeat.items()}
    return scores, consistency(per_repeat, [r.text for r in responses]) if len(samples) > 1 else None


async def _one_score(use: _MetricUse, sample: "Sample", ctx: Any) -> float:
    """One sample's score; a metric's own failure is raised as a MetricError naming
    the metric and the plugin file and line it came from."""
    try:
        value = await use.metric.ascore(sample, use.args, ctx)
        return float(value)
    except LLMOptError:
        raise
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise metric_failure(use.key, exc) from None


def _judge_fields(judging: "CaseJudging | None") -> dict[str, Any]:
    """A case's judge verdicts and judge usage, as CaseResult fields."""
    return {} if judging is None else {"judges": dict(judging.judges), "judge_usage": judging.usage}


def _judged(result: CaseResult, judging: "CaseJudging | None") -> CaseResult:
    """An errored case keeps what its judge calls used (they were paid for)."""
    from dataclasses import replace

    return replace(result, **_judge_fields(judging)) if judging is not None else result


def _judge_usage(cases: Sequence[CaseResult]) -> Usage:
    return Usage.total(case.judge_usage for case in cases)


def _served(response: "Response") -> dict[str, Any]:
    """What the server said about itself (reported model, fingerprint, stop reason)."""
    served = {"model": response.model} if response.model else {}
    return served | {k: v for k, v in response.metadata.items() if v is not None}


def _response_usage(responses: Sequence["Response"]) -> Usage:
    return Usage.total(response_usage(r) for r in responses)


def _usage(cases: Sequence[CaseResult]) -> Usage:
    return Usage.total(case.usage for case in cases)


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
    if provider is None:
        return {}
    try:
        return dict(provider.served())
    except LLMOptError:  # the provider cannot run: its cases already carry the error
        return {}


def _unknown_relevant(plan: _Plan, field: str, source: str, problems: list[str], known: list[str]) -> str:
    shown = ", ".join(known[:5]) + (f", ... ({len(known)} documents)" if len(known) > 5 else "")
    head = f"{plan.where}: task.relevant (field {field!r}) names documents that are not in retrieval.source {source}:"
    lines = [head]
    lines += problems[:10] + ([f"  ... and {len(problems) - 10} more"] if len(problems) > 10 else [])
    return "\n".join(lines + [f"known documents: {shown or 'none'}"])

"""Few-shot demonstrations for a variant's run, drawn from its task's training cases only.

``random`` takes a seeded sample; ``bootstrap`` asks the teacher (the variant's own
model unless ``demos.teacher`` names another) the training cases in a seeded order and
keeps the first ``k`` it answers right by the demos' metric, with its own answers;
``similar`` retrieves, for each case, the ``k`` training cases nearest its input.

Training cases that equal or nearly equal a case the variant is evaluated on (dev or
test, by the fine-tuning leakage check) are never shown: they are left out of the
pool, and the plan's notes say how many and which. A demonstration's prompt is the
recipe's own user message rendered for the training case (retrieval included), so it
reads like the case that follows it. Bootstrap calls go through the gateway like any
other, so they are cached, counted and held to a search's budget.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import LLMOptError
from ..recipe import Demo

if TYPE_CHECKING:
    from ..dataset import Case
    from ..recipe import Renderer
    from ..retrieval import Index
    from ..spec import DemosSpec, Scenario, VariantSpec
    from .results import Usage
    from .runner import Runner

__all__ = ["DemoPlan", "plan_demos"]

#: The near-duplicate threshold of the leakage check applied to the demonstration pool.
LEAK_THRESHOLD = 0.9


@dataclass
class DemoPlan:
    """The demonstrations of one variant's run."""

    spec: "DemosSpec"
    #: The same demonstrations for every case (random, bootstrap); None for similar.
    fixed: tuple[Demo, ...] | None
    #: Training cases usable as demonstrations (after the leakage check), by id.
    pool: Mapping[str, "Case"]
    #: Notes worth showing: leaks left out, a bootstrap that found fewer than k.
    notes: list[str] = field(default_factory=list)
    #: Where the teacher's answers came from: (tried, right) training cases.
    bootstrap: tuple[int, int] | None = None
    index: "Index | None" = None
    prompts: "_Prompts | None" = None
    #: What the bootstrap teacher's calls for this plan used (answers memoized by the
    #: runner are counted once, by the plan that asked them).
    usage: "Usage" = field(default_factory=lambda: _usage())

    async def for_case(self, case: "Case", where: str) -> tuple[Demo, ...]:
        """The demonstrations shown before ``case``."""
        if self.fixed is not None:
            return self.fixed
        assert self.index is not None and self.prompts is not None
        hits = await self.index.asearch(self.prompts.input_of(case), self.spec.k)
        return tuple([await self.prompts.demo(self.pool[hit.chunk.doc_id], where) for hit in hits])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.spec.k, "select": self.spec.select, "pool": len(self.pool)}
        if self.fixed is not None:
            out["ids"] = [demo.id for demo in self.fixed]
            out["shown"] = [{"id": d.id, "input": d.input, "prompt": d.prompt, "answer": d.answer} for d in self.fixed]
        if self.bootstrap is not None:
            out["bootstrap"] = {"tried": self.bootstrap[0], "right": self.bootstrap[1]}
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def identity(self) -> dict[str, Any]:
        """What the demonstrations depend on beyond the spec: the training cases."""
        from .identity import digest

        return {"pool": digest([[c.id, dict(c.fields)] for c in self.pool.values()], 16),
                "fixed": [d.id for d in self.fixed] if self.fixed is not None else None}


class _Prompts:
    """Renders a training case's demonstration prompt once."""

    def __init__(self, variant: "VariantSpec", index: "Index | None", renderer: "Renderer") -> None:
        self.variant = replace(variant, recipe=replace(variant.recipe, demos=None, examples=()))
        self.index = index
        self.renderer = renderer
        self._done: dict[str, str] = {}

    def input_of(self, case: "Case") -> str:
        name = self.variant.task.input_field
        if name and name in case.fields:
            return str(case.fields[name])
        return " ".join(str(v) for k, v in case.fields.items() if k != self.variant.task.expected_field)

    async def prompt(self, case: "Case", where: str) -> str:
        if case.id not in self._done:
            from ..recipe._prompt import build_prompt

            built = await build_prompt(self.variant, case, self.index, self.renderer, f"{where} demonstration {case.id!r}")
            self._done[case.id] = built.prompt.user
        return self._done[case.id]

    async def demo(self, case: "Case", where: str, answer: str | None = None) -> Demo:
        shown = answer if answer is not None else _expected_text(case.expected)
        return Demo(id=case.id, input=self.input_of(case), prompt=await self.prompt(case, where), answer=shown)


def _usage() -> "Usage":
    from .results import Usage

    return Usage()


def _expected_text(expected: Any) -> str:
    if isinstance(expected, str):
        return expected
    if expected is None:
        return ""
    return json.dumps(expected, ensure_ascii=False, sort_keys=True)


async def plan_demos(
    runner: "Runner", scenario: "Scenario", variant: "VariantSpec", index: "Index | None", where: str,
    evaluated: Sequence["Case"],
) -> DemoPlan | None:
    """The demonstrations of ``variant`` (None when its recipe has none).

    ``evaluated`` are the cases the variant runs on now; every held-out case of the
    task (dev and test) is kept apart from the pool too. Raises :class:`LLMOptError`
    when there are no training cases to draw from.
    """
    spec = variant.recipe.demos
    if spec is None:
        return None
    pool, notes = _pool(runner, scenario, variant, evaluated)
    if not pool:
        raise LLMOptError(f"{where}: recipe.demos: no training cases to draw demonstrations from" +
                          (f" ({notes[0]})" if notes else ""))
    prompts = _Prompts(variant, index, runner._renderer)
    plan = DemoPlan(spec, None, pool, notes, prompts=prompts)
    if spec.select == "random":
        chosen = random.Random(f"llmopt-demos:{spec.seed}").sample(sorted(pool), min(spec.k, len(pool)))
        plan.fixed = tuple([await prompts.demo(pool[i], where) for i in chosen])
        if len(pool) < spec.k:
            notes.append(f"only {len(pool)} training cases for k={spec.k} demonstrations")
    elif spec.select == "bootstrap":
        await _bootstrap(runner, scenario, variant, plan, where)
    else:
        plan.index = _similar_index(runner, scenario, spec, pool, prompts)
    return plan


def _pool(
    runner: "Runner", scenario: "Scenario", variant: "VariantSpec", evaluated: Sequence["Case"]
) -> tuple[dict[str, "Case"], list[str]]:
    """The training cases, less those that leak into the evaluated or held-out cases."""
    from ..dataset import load_held_out, load_training_cases

    task = variant.task
    key = json.dumps(["demo-pool", str(scenario.path), asdict(replace(task, part=None, location=None)),
                      sorted(c.id for c in evaluated)], sort_keys=True, default=str)
    memo = runner.memo
    if key not in memo:
        train = [c for c in load_training_cases(task, scenario.path) if c.error is None]
        held = {c.id: c for c in (*load_held_out(replace(task, part=None), scenario.path), *evaluated) if c.error is None}
        memo[key] = _without_leaks(train, list(held.values()), task.input_field, task.expected_field)
    pool, notes = memo[key]
    return dict(pool), list(notes)


def _without_leaks(
    train: Sequence["Case"], held: Sequence["Case"], input_field: str | None, expected_field: str | None
) -> tuple[dict[str, "Case"], list[str]]:
    from ..dataset._leaks import find_leaks

    def text(case: "Case") -> str:
        if input_field and input_field in case.fields:
            return str(case.fields[input_field])
        return " ".join(str(v) for k, v in case.fields.items() if k != expected_field)

    held_ids = {c.id for c in held}
    same_id = [c.id for c in train if c.id in held_ids]
    leaks = find_leaks([(c.id, text(c)) for c in train], [(c.id, text(c)) for c in held], LEAK_THRESHOLD)
    dropped = sorted({leak.train_id for leak in leaks} | set(same_id))
    notes = []
    if dropped:
        shown = ", ".join(dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        notes.append(f"{len(dropped)} training case(s) left out of the demonstrations: they equal or nearly equal "
                     f"an evaluated case (the leakage check): {shown}")
    return {c.id: c for c in train if c.id not in set(dropped)}, notes


async def _bootstrap(runner: "Runner", scenario: "Scenario", variant: "VariantSpec", plan: DemoPlan, where: str) -> None:
    """The first ``k`` training cases (seeded order) the teacher answers right."""
    from ..spec import metric_key

    spec = plan.spec
    assert spec.metric is not None and plan.prompts is not None
    teacher = replace(
        variant,
        name=f"{variant.name} (bootstrap)",
        recipe=replace(variant.recipe, demos=None),
        model=spec.teacher or variant.model,
        task=replace(variant.task, part="train"),
    )
    key = metric_key(spec.metric, spec.args)
    order = sorted(plan.pool)
    random.Random(f"llmopt-bootstrap:{spec.seed}").shuffle(order)
    answers = runner.memo.setdefault(_teacher_key(teacher, key, spec), {})
    right: list[Demo] = []
    tried = 0
    while len(right) < spec.k and tried < len(order):
        batch = [plan.pool[i] for i in order[tried: tried + spec.k - len(right)]]
        tried += len(batch)
        missing = [c for c in batch if c.id not in answers]
        if missing:
            result = await runner.aevaluate_spec(scenario, teacher, {key: (spec.metric, dict(spec.args))}, cases=missing)
            plan.usage = plan.usage + result.usage
            failed = next((c.error for c in result.cases if c.error is not None), None)
            if failed is not None:
                raise LLMOptError(f"{where}: bootstrap demonstrations: the teacher failed: {failed}")
            answers.update({c.id: (c.outputs[0] if c.outputs else "", c.scores.get(key)) for c in result.cases})
        for case in batch:
            output, score = answers[case.id]
            if score is not None and score >= spec.min_score:
                right.append(await plan.prompts.demo(case, where, output.strip()))
    plan.fixed = tuple(right)
    plan.bootstrap = (tried, len(right))
    if len(right) < spec.k:
        plan.notes.append(f"bootstrap found {len(right)} of k={spec.k} right answers in {tried} training cases")


def _teacher_key(teacher: "VariantSpec", key: str, spec: "DemosSpec") -> str:
    plain = asdict(replace(teacher, name="", location=None))
    return json.dumps(["bootstrap", plain, key, spec.min_score], sort_keys=True, default=str)


def _similar_index(
    runner: "Runner", scenario: "Scenario", spec: "DemosSpec", pool: Mapping[str, "Case"], prompts: _Prompts
) -> "Index":
    """An index over the training inputs (one chunk per case)."""
    from ..retrieval import Chunk
    from ..spec import RetrievalSpec

    retriever = runner.registry.retrievers.get(spec.retriever)
    if retriever is None:
        raise LLMOptError(f"recipe.demos: unknown retriever {spec.retriever!r}")
    chunks = [Chunk(id=case_id, doc_id=case_id, text=prompts.input_of(case)) for case_id, case in sorted(pool.items())]
    return retriever.build(chunks, RetrievalSpec(retriever=spec.retriever, top_k=spec.k), scenario.base_dir)

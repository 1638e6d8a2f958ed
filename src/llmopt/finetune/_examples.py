"""Training sets: a variant's training cases rendered as chat examples.

Each training case becomes one example: the messages the evaluation would send for it
(built by the recipe's one prompt builder, :func:`llmopt.recipe.build_prompt`, with
retrieved context for retrieval-aware fine-tuning) and the case's expected output as
the assistant message. So a model is trained on exactly the prompts it is evaluated
on. The same variant's evaluation cases travel along, so the leakage check sees both
sides.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import FineTuneError

if TYPE_CHECKING:
    from ..dataset import Case
    from ..dataset._leaks import Leak
    from ..recipe import Renderer
    from ..registry import Registry
    from ..retrieval import Index
    from ..spec import Scenario, TaskSpec, VariantSpec

__all__ = ["ChatExample", "TrainingSet", "case_text", "training_set"]


@dataclass(frozen=True)
class ChatExample:
    """One training example: the case it came from and its chat messages."""

    case_id: str
    messages: tuple[Mapping[str, str], ...]

    def to_json(self) -> str:
        """The example as one line of OpenAI chat fine-tuning JSONL."""
        return json.dumps({"messages": [dict(m) for m in self.messages]}, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class TrainingSet:
    """A variant's training examples, its evaluation cases, and the inputs of both
    (``(case id, text)`` pairs) for the leakage check."""

    scenario: str
    variant: str
    examples: tuple[ChatExample, ...]
    eval_cases: tuple["Case", ...]
    train_inputs: tuple[tuple[str, str], ...]
    eval_inputs: tuple[tuple[str, str], ...]
    with_context: bool = False

    def jsonl(self) -> str:
        """The canonical JSONL: one example per line, in the training cases' order."""
        return "".join(example.to_json() + "\n" for example in self.examples)

    @property
    def data_hash(self) -> str:
        """``sha256:<hex>`` of :meth:`jsonl` (equal to the hash of a written file)."""
        return "sha256:" + hashlib.sha256(self.jsonl().encode("utf-8")).hexdigest()

    def write(self, path: Path) -> None:
        """Write :meth:`jsonl` to ``path`` (UTF-8, ``\\n`` line ends)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.jsonl().encode("utf-8"))

    def leaks(self, threshold: float = 0.9) -> list["Leak"]:
        """Training inputs that equal or nearly equal evaluation inputs."""
        from ..dataset._leaks import find_leaks

        return find_leaks(self.train_inputs, self.eval_inputs, threshold)


def training_set(
    scenario: "Scenario", variant: str, *, with_context: bool = False, registry: "Registry | None" = None
) -> TrainingSet:
    """The training set of ``variant``: its training cases (``task.train`` or the
    training part of ``task.split``) rendered with its recipe.

    ``with_context`` renders each case with the variant's retrieval (the variant must
    have one), for retrieval-aware fine-tuning. Raises :class:`FineTuneError` (or
    DatasetError / RenderError) naming what is missing.
    """
    from ..dataset import load_held_out, load_training_cases

    spec = _variant(scenario, variant)
    train = load_training_cases(spec.task, scenario.path)
    evaluation = load_held_out(spec.task, scenario.path)
    _check_expected(train, spec.task)
    index = _index(scenario, spec, registry) if with_context else None
    examples = _examples(scenario, spec, train, index)
    return TrainingSet(
        scenario=scenario.id,
        variant=variant,
        examples=examples,
        eval_cases=tuple(evaluation),
        train_inputs=tuple((c.id, case_text(c, spec.task)) for c in train),
        eval_inputs=tuple((c.id, case_text(c, spec.task)) for c in evaluation),
        with_context=with_context,
    )


def case_text(case: "Case", task: "TaskSpec") -> str:
    """A case's input text for leakage checks: the ``task.input`` field, else every
    field but the id, expected and relevant ones, one per line."""
    if task.input_field and task.input_field in case.fields:
        return _text(case.fields[task.input_field])
    skip = {task.id_field, task.expected_field or "expected", task.relevant_field}
    return "\n".join(_text(v) for k, v in case.fields.items() if k not in skip and v is not None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _variant(scenario: "Scenario", variant: str) -> "VariantSpec":
    spec = scenario.variants.get(variant)
    if spec is None:
        known = ", ".join(scenario.variants) or "none"
        raise FineTuneError(f"{scenario.id}: no variant {variant!r} (variants: {known})")
    if not spec.recipe.template:
        raise FineTuneError(f"{scenario.id}::{variant}: the variant has no recipe template to render training examples")
    return spec


def _check_expected(cases: Sequence["Case"], task: "TaskSpec") -> None:
    """Every training case needs a non-empty expected output (the assistant message)."""
    field = task.expected_field or "expected"
    missing = [f"  case {c.id!r} ({c.source})" for c in cases if c.expected is None or not _text(c.expected).strip()]
    if missing:
        shown = missing[:10] + ([f"  ... and {len(missing) - 10} more"] if len(missing) > 10 else [])
        head = f"{len(missing)} training case(s) have no expected output (field {field!r}, set by task.expected):"
        raise FineTuneError("\n".join([head, *shown]))


def _index(scenario: "Scenario", spec: "VariantSpec", registry: "Registry | None") -> "Index":
    if spec.retrieval is None:
        raise FineTuneError(
            f"{scenario.id}::{spec.name}: with context needs retrieval, and the variant has none "
            "(choose a variant with a retrieval section)"
        )
    from ..engine.calls import ModelCalls
    from ..registry import create_registry
    from ..retrieval import RetrievalSession

    retrievers = (registry or create_registry()).retrievers
    session = RetrievalSession(retrievers, calls=ModelCalls())
    return session.index_for(spec.retrieval, scenario.base_dir)


def _examples(
    scenario: "Scenario", spec: "VariantSpec", cases: Sequence["Case"], index: "Index | None"
) -> tuple[ChatExample, ...]:
    """Every training case's example, built in one event loop."""
    from ..engine.runner import run_sync
    from ..recipe import Renderer

    renderer = Renderer()

    async def build() -> tuple[ChatExample, ...]:
        try:
            return tuple([await _example(renderer, scenario, spec, case, index) for case in cases])
        finally:
            if index is not None:
                await index.aclose()

    return run_sync(build)


async def _example(
    renderer: "Renderer", scenario: "Scenario", spec: "VariantSpec", case: "Case", index: "Index | None"
) -> ChatExample:
    from ..recipe import build_prompt

    where = f"{scenario.path.name} [{scenario.id}::{spec.name}] training case {case.id!r}"
    built = await build_prompt(spec, case, index, renderer, where)
    messages = [*built.prompt.messages, {"role": "assistant", "content": _text(case.expected).strip()}]
    return ChatExample(case_id=case.id, messages=tuple(messages))

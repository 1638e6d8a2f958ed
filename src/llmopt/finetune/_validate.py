"""Checking chat training examples before a job is paid for.

Problems make a training file invalid: unknown roles, empty messages, an example that
does not end with the assistant's answer, too few examples, an example longer than
the base model trains on. Warnings do not: duplicate examples, one prompt with
different answers. Tokens are estimated (about four characters per token, plus a
few per message); the cost is tokens times epochs times the base model's training
price from the shipped table (``training_prices.json``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping, Sequence

from ._examples import ChatExample

__all__ = ["ValidationReport", "estimate_tokens", "training_prices", "validate_examples"]

ROLES = ("system", "user", "assistant")
#: OpenAI's minimum number of training examples.
MIN_EXAMPLES = 10
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_EXAMPLE = 3
_SHOWN = 10


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_examples` found; ``ok`` when there is no problem."""

    examples: int
    tokens: int
    max_example_tokens: int
    epochs: int
    base_model: str | None
    cost_usd: float | None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    price_note: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The report as printed by ``llmopt finetune prepare``."""
        out = [f"examples: {self.examples}", f"tokens: ~{self.tokens} per epoch (longest example ~{self.max_example_tokens})"]
        trained = f"~{self.tokens * self.epochs} tokens over {self.epochs} epoch(s)"
        if self.cost_usd is not None:
            out.append(f"estimated training cost: ${self.cost_usd:.4f} ({trained} on {self.base_model})")
        else:
            out.append(f"estimated training cost: unknown ({trained}; {self.price_note})")
        out += [f"problem: {p}" for p in _capped(self.problems)] + [f"warning: {w}" for w in _capped(self.warnings)]
        out.append("valid" if self.ok else f"invalid: {len(self.problems)} problem(s)")
        return out


@lru_cache(maxsize=1)
def training_prices() -> Mapping[str, Any]:
    """The shipped training price table (``training_prices.json``)."""
    text = resources.files(__package__).joinpath("training_prices.json").read_text(encoding="utf-8")
    return json.loads(text)


def estimate_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """An estimate of an example's tokens: about four characters per token, plus a few
    per message for the chat format (exact counts need the model's tokenizer)."""
    total = _TOKENS_PER_EXAMPLE
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        text = content if isinstance(content, str) else ""
        total += _TOKENS_PER_MESSAGE + math.ceil(len(text) / 4)
    return total


def validate_examples(
    examples: Sequence[ChatExample],
    *,
    min_examples: int = MIN_EXAMPLES,
    base_model: str | None = None,
    epochs: int | None = None,
) -> ValidationReport:
    """Check ``examples`` and estimate their tokens and training cost.

    ``base_model`` picks the price (and the longest example allowed) from the table;
    ``epochs`` defaults to the table's ``default_epochs`` (3).
    """
    table = training_prices()
    model = table["models"].get(base_model or "")
    problems = [p for example in examples for p in _example_problems(example)]
    if len(examples) < min_examples:
        problems.append(f"{len(examples)} example(s); at least {min_examples} are needed")
    counts = [estimate_tokens(example.messages) for example in examples]
    problems += _length_problems(examples, counts, base_model, model)
    epochs = int(epochs or table["default_epochs"])
    tokens = sum(counts)
    cost = tokens * epochs * float(model["usd_per_million_training_tokens"]) / 1e6 if model is not None else None
    return ValidationReport(
        examples=len(examples),
        tokens=tokens,
        max_example_tokens=max(counts, default=0),
        epochs=epochs,
        base_model=base_model,
        cost_usd=cost,
        problems=tuple(problems),
        warnings=tuple(_duplicate_warnings(examples)),
        price_note=_price_note(base_model, table),
    )


def _length_problems(
    examples: Sequence[ChatExample], counts: Sequence[int], base_model: str | None, model: Mapping[str, Any] | None
) -> list[str]:
    """Examples longer than the base model trains on (known only for priced models)."""
    if model is None:
        return []
    limit = int(model["max_example_tokens"])
    return [
        f"example {e.case_id!r}: ~{n} tokens, more than {base_model} trains on ({limit})"
        for e, n in zip(examples, counts, strict=True)
        if n > limit
    ]


def _example_problems(example: ChatExample) -> list[str]:
    where = f"example {example.case_id!r}"
    messages = example.messages
    if not messages:
        return [f"{where}: no messages"]
    problems: list[str] = []
    for number, message in enumerate(messages, start=1):
        problems += [f"{where} message {number}: {p}" for p in _message_problems(message)]
    roles = [m.get("role") if isinstance(m, Mapping) else None for m in messages]
    if "user" not in roles:
        problems.append(f"{where}: no user message")
    if roles[-1] != "assistant":
        problems.append(f"{where}: must end with an assistant message (the answer to learn)")
    if "system" in roles[1:]:
        problems.append(f"{where}: a system message may only come first")
    return problems


def _message_problems(message: Any) -> list[str]:
    if not isinstance(message, Mapping):
        return ["must be a mapping with role and content"]
    problems: list[str] = []
    role = message.get("role")
    if role not in ROLES:
        problems.append(f"unknown role {role!r} (use system, user or assistant)")
    content = message.get("content")
    if not isinstance(content, str):
        problems.append(f"content must be text, got {type(content).__name__}")
    elif not content.strip():
        problems.append("empty content")
    return problems


def _duplicate_warnings(examples: Sequence[ChatExample]) -> list[str]:
    """Examples repeated verbatim, and prompts taught with different answers."""
    warnings: list[str] = []
    whole: dict[str, str] = {}
    prompts: dict[str, tuple[str, str]] = {}
    for example in examples:
        if not example.messages:
            continue
        key = _canonical(example.messages)
        prompt, answer = _canonical(example.messages[:-1]), _canonical(example.messages[-1:])
        if key in whole:
            warnings.append(f"example {example.case_id!r} repeats example {whole[key]!r}")
            continue
        whole[key] = example.case_id
        first = prompts.setdefault(prompt, (example.case_id, answer))
        if first[1] != answer:
            warnings.append(f"example {example.case_id!r} has the prompt of {first[0]!r} with a different answer")
    return warnings


def _canonical(messages: Sequence[Any]) -> str:
    return json.dumps([dict(m) if isinstance(m, Mapping) else m for m in messages], sort_keys=True, default=str)


def _price_note(base_model: str | None, table: Mapping[str, Any]) -> str:
    if base_model is None:
        return "give a base model for a price"
    if base_model in table["models"]:
        return ""
    return f"no training price for {base_model} (known: {', '.join(sorted(table['models']))})"


def _capped(items: Sequence[str]) -> list[str]:
    return list(items[:_SHOWN]) + ([f"... and {len(items) - _SHOWN} more"] if len(items) > _SHOWN else [])

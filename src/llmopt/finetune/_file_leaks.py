"""Leakage between a recorded training file and a variant's evaluation cases.

A training file holds rendered prompts, the evaluation cases hold raw fields. The
user messages are compared with each case's input text in two ways: an exact leak
is a case whose normalized text appears whole in a training prompt (or equals it
once the template's common prefix and suffix are cut off); a near leak compares the
prompts without that common text to the inputs by TF-IDF cosine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..dataset._leaks import Leak, find_leaks, normalize_text
from ..errors import LLMOptError

if TYPE_CHECKING:
    from ..spec import Scenario, VariantSpec
    from ._examples import ChatExample

__all__ = ["LeakageWarning", "leak_warnings", "training_file_leaks"]

#: A contained evaluation text counts as an exact leak from this many words on (a
#: shorter one, like "yes", appears inside unrelated prompts).
MIN_CONTAINED_WORDS = 4
_SHOWN = 10


class LeakageWarning(UserWarning):
    """Evaluation cases of a fine-tuned variant appear in its training file."""


@dataclass(frozen=True)
class _Inputs:
    train: list[tuple[str, str]]
    evaluation: list[tuple[str, str]]


def training_file_leaks(
    path: Path, scenario: "Scenario", variant: str, threshold: float = 0.9
) -> list[Leak]:
    """Leaks between the training file at ``path`` and ``variant``'s evaluation cases
    (training ids are ``line N`` of the file)."""
    from ._file import read_training_file

    inputs = _inputs(read_training_file(path), scenario, scenario.variants[variant])
    exact = _contained(inputs)
    stripped = _strip_common([text for _, text in inputs.train])
    found = find_leaks(list(zip([i for i, _ in inputs.train], stripped, strict=True)), inputs.evaluation, threshold)
    seen = {(leak.train_id, leak.eval_id) for leak in exact}
    return exact + [leak for leak in found if (leak.train_id, leak.eval_id) not in seen]


def leak_warnings(scenario: "Scenario", show: Callable[[Path], str] | None = None) -> list[str]:
    """One message per variant whose ``finetune.training_file`` holds evaluation cases
    (or cannot be read); variants sharing a file and a task are checked once."""
    messages: list[str] = []
    done: dict[tuple[str, str], list[str]] = {}
    for name, spec in scenario.variants.items():
        path = spec.finetune.training_file if spec.finetune is not None else None
        if path is None:
            continue
        shown = show(path) if show is not None else os.path.relpath(path)
        key = (str(path), repr(spec.task))
        if key not in done:
            done[key] = _check(path, scenario, name, shown)
        messages += [f"{scenario.id}::{name}: {line}" for line in done[key]]
    return messages


def _check(path: Path, scenario: "Scenario", variant: str, shown: str) -> list[str]:
    if not path.is_file():
        return [f"finetune.training_file {shown} not found: cannot check it for evaluation cases"]
    try:
        leaks = training_file_leaks(path, scenario, variant)
    except LLMOptError as exc:
        return [f"cannot check finetune.training_file {shown} for evaluation cases: {exc}"]
    if not leaks:
        return []
    pairs = [f"eval {leak.eval_id!r} ~ {leak.train_id} ({_kind(leak)})" for leak in leaks[:_SHOWN]]
    more = [f"... and {len(leaks) - _SHOWN} more"] if len(leaks) > _SHOWN else []
    head = f"{len({leak.eval_id for leak in leaks})} evaluation case(s) leaked into the training file {shown}"
    return [f"{head}: " + "; ".join(pairs + more)]


def _kind(leak: Leak) -> str:
    return "exact" if leak.kind == "exact" else f"near, {leak.similarity:.2f}"


def _inputs(examples: Sequence["ChatExample"], scenario: "Scenario", spec: "VariantSpec") -> _Inputs:
    from ..dataset import load_held_out
    from ._examples import case_text

    train = [(e.case_id, _user_text(e)) for e in examples]
    cases = load_held_out(spec.task, scenario.path)
    return _Inputs(train, [(c.id, case_text(c, spec.task)) for c in cases])


def _user_text(example: "ChatExample") -> str:
    users = [m.get("content") for m in example.messages if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else ""


def _contained(inputs: _Inputs) -> list[Leak]:
    """Exact leaks: an evaluation text found whole inside a training prompt."""
    train = [(i, f" {normalize_text(t)} ") for i, t in inputs.train]
    leaks: list[Leak] = []
    for eval_id, text in inputs.evaluation:
        norm = normalize_text(text)
        if len(norm.split()) < MIN_CONTAINED_WORDS:
            continue
        leaks += [Leak(train_id, eval_id, "exact", 1.0) for train_id, t in train if f" {norm} " in t]
    return leaks


def _strip_common(texts: list[str]) -> list[str]:
    """``texts`` without the prefix and suffix they all share (the template's text)."""
    if len(texts) < 2:
        return texts
    prefix = os.path.commonprefix(texts)
    suffix = os.path.commonprefix([t[len(prefix) :][::-1] for t in texts])
    return [t[len(prefix) : len(t) - len(suffix)] for t in texts]

"""Reading a chat fine-tuning JSONL file back into examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import FineTuneError
from ._examples import ChatExample

__all__ = ["read_training_file"]

_SHOWN = 10


def read_training_file(path: Path) -> list[ChatExample]:
    """The examples of a JSONL file of ``{"messages": [...]}`` lines; each example's
    ``case_id`` is ``line N``. Blank lines are skipped. Raises :class:`FineTuneError`
    listing every line that is not such an object (message contents are checked by
    :func:`validate_examples`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FineTuneError(f"{path}: cannot read the training file: {exc.strerror or exc}") from None
    examples: list[ChatExample] = []
    problems: list[str] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            example = _example(line, number, path, problems)
            if example is not None:
                examples.append(example)
    if problems:
        shown = problems[:_SHOWN] + ([f"... and {len(problems) - _SHOWN} more"] if len(problems) > _SHOWN else [])
        raise FineTuneError("\n".join([f"{len(problems)} bad line(s) in the training file {path}:", *shown]))
    return examples


def _example(line: bytes, number: int, path: Path, problems: list[str]) -> ChatExample | None:
    try:
        value: Any = json.loads(line.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path}:{number}: not a JSON line ({exc})")
        return None
    messages = value.get("messages") if isinstance(value, dict) else None
    if not isinstance(messages, list):
        problems.append(f"{path}:{number}: expected an object with a 'messages' list")
        return None
    return ChatExample(case_id=f"line {number}", messages=tuple(messages))

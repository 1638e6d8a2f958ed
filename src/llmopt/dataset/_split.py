"""Seeded splits of a task's cases into train, dev and test parts, by case id.

A case's part is a function of its id and the seed alone: the id is hashed with the
seed into a number in [0, 1), and the shares cut that interval in the order train,
dev, test. Appending cases to a dataset therefore never moves an old case to another
part, and no case is ever in two parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from llmopt.errors import DatasetError

from ._case import Case

__all__ = ["PARTS", "case_part", "split_cases", "split_parts"]

#: The parts of a split, in the order their shares cut [0, 1).
PARTS = ("train", "dev", "test")
#: Hex digits of the hash used: 60 bits, far finer than any share.
_DIGITS = 15


def _position(case_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"llmopt-split\x00{seed}\x00{case_id}".encode()).hexdigest()
    return int(digest[:_DIGITS], 16) / float(16**_DIGITS)


def case_part(case_id: str, shares: dict[str, float], seed: int) -> str | None:
    """The part (train, dev, test, or ``rest`` for the evaluation part of a
    train-only split) that the case with ``case_id`` belongs to."""
    at = _position(case_id, seed)
    edge = 0.0
    for part in PARTS:
        edge += shares.get(part, 0.0)
        if at < edge:
            return part
    return "rest"


def split_parts(cases: Sequence[Case], shares: dict[str, float], seed: int) -> dict[str, list[Case]]:
    """Every part's cases (dataset order kept): ``train``, ``dev``, ``test`` and
    ``rest`` (what no share covers: the evaluation part of a train-only split)."""
    parts: dict[str, list[Case]] = {part: [] for part in (*PARTS, "rest")}
    for case in cases:
        parts[case_part(case.id, shares, seed) or "rest"].append(case)
    return parts


def split_cases(cases: Sequence[Case], shares: dict[str, float], seed: int, part: str) -> list[Case]:
    """The cases of ``part`` ("rest" for a train-only split's evaluation cases).

    Raises :class:`DatasetError` when a part the task uses is empty, naming the
    sizes, so a share too small for the dataset is a clear error rather than an
    evaluation of nothing.
    """
    parts = split_parts(cases, shares, seed)
    used = [p for p in (*PARTS, "rest") if shares.get(p, 0.0) > 0 or (p == "rest" and _rest_share(shares) > 1e-9)]
    empty = [p for p in used if not parts[p]]
    if empty:
        sizes = ", ".join(f"{p} {len(parts[p])}" for p in used)
        side = _name(empty[0])
        raise DatasetError(
            f"task.split of {len(cases)} case(s) leaves no {side} cases ({sizes}): change the shares or add cases"
        )
    return parts[part]


def _rest_share(shares: dict[str, float]) -> float:
    return 1.0 - sum(shares.get(p, 0.0) for p in PARTS)


def _name(part: str) -> str:
    return {"train": "training", "rest": "evaluation"}.get(part, part)

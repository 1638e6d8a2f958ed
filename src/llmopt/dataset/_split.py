"""A seeded split of a task's cases into training and evaluation cases."""

from __future__ import annotations

from collections.abc import Sequence

from llmopt.errors import DatasetError

from ._case import Case
from ._sample import sample_cases

__all__ = ["split_cases"]


def split_cases(cases: Sequence[Case], train: float, seed: int) -> tuple[list[Case], list[Case]]:
    """(training cases, evaluation cases): ``round(train * n)`` cases chosen with
    ``seed`` go to training, the others to evaluation; both keep the dataset's order.

    The split is the same on every run, so a case is never in both parts. Raises
    :class:`DatasetError` when either part would be empty.
    """
    count = round(train * len(cases))
    if count < 1 or count >= len(cases):
        side = "training" if count < 1 else "evaluation"
        raise DatasetError(
            f"task.split: train {train:g} of {len(cases)} case(s) leaves no {side} cases: "
            "change the share or add cases"
        )
    chosen = sample_cases(cases, count, seed)
    taken = {id(case) for case in chosen}
    return chosen, [case for case in cases if id(case) not in taken]

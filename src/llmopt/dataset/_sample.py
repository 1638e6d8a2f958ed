"""Seeded sampling of cases that keeps the dataset's order."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ._case import Case

__all__ = ["sample_cases"]


def sample_cases(cases: Sequence[Case], size: int | None, seed: int) -> list[Case]:
    """``size`` cases chosen with ``random.Random(seed)``, in their original order.

    A partial Fisher-Yates shuffle over indices, drawn with ``randrange`` only, so the
    choice is the same on every run and every supported Python version. ``None`` or a
    size at least the number of cases keeps every case.
    """
    if size is None or size >= len(cases):
        return list(cases)
    rng = random.Random(seed)
    indices = list(range(len(cases)))
    for i in range(size):
        j = rng.randrange(i, len(indices))
        indices[i], indices[j] = indices[j], indices[i]
    return [cases[i] for i in sorted(indices[:size])]

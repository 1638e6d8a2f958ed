"""The effect of each change: main effects and two-axis interactions over a complete grid.

A level's main effect is the mean, over cases, of its paired difference against the
axis's first level, averaged over every combination of the other axes' levels; its
interval is the paired t interval of those per-case differences. An interaction of two
axes at levels (i, j) is the per-case contrast s(i,j) - s(i,0) - s(0,j) + s(0,0),
averaged over the remaining axes. Only a complete grid (every candidate scored on the
same cases) has them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..stats import paired_t
from ..stats._intervals import unit_bounds

__all__ = ["Effect", "grid_effects", "level_text"]

#: scores[candidate levels (value indexes per axis)][case id] -> the case's score
Scores = Mapping[tuple[int, ...], Mapping[str, float]]


@dataclass(frozen=True)
class Effect:
    """One contrast: ``axes`` at ``levels`` against ``reference``, over ``n`` cases."""

    axes: tuple[str, ...]
    levels: tuple[str, ...]
    reference: tuple[str, ...]
    delta: float
    ci: tuple[float, float] | None
    n: int

    def to_json(self) -> dict[str, Any]:
        ci = list(self.ci) if self.ci is not None else None
        if len(self.axes) == 1:
            return {"axis": self.axes[0], "level": self.levels[0], "reference": self.reference[0],
                    "delta": self.delta, "ci": ci, "n": self.n}
        return {"axes": list(self.axes), "levels": list(self.levels), "reference": list(self.reference),
                "delta": self.delta, "ci": ci, "n": self.n}


#: The keys of a ``demos`` axis level (``recipe.demos`` settings).
_DEMO_KEYS = frozenset({"k", "select", "seed", "teacher", "metric", "args", "min_score", "retriever", "examples"})


def level_text(value: Any) -> str:
    """An axis value as the reports show it (a ``demos`` level as ``k=4 similar``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "k" in value and set(value) <= _DEMO_KEYS:
        shown = [f"k={value['k']}", *([str(value["select"])] if value.get("select") else [])]
        shown += [f"{key}={value[key]}" for key in ("seed", "retriever", "examples", "min_score") if key in value]
        if isinstance(value.get("teacher"), dict):
            shown.append(f"teacher={value['teacher'].get('provider')}:{value['teacher'].get('id') or 'default'}")
        return " ".join(shown)
    import json

    return json.dumps(value, sort_keys=True, default=str)


def grid_effects(
    axes: Sequence[tuple[str, Sequence[Any]]], scores: Scores, cases: Sequence[str]
) -> tuple[list[Effect], list[Effect]]:
    """(main effects, interactions) of a complete grid scored on ``cases``."""
    sizes = [len(values) for _, values in axes]
    width = _width(scores)
    mains = [
        _effect([axes[a]], [level], [0], _main(scores, sizes, cases, a, level), width)
        for a in range(len(axes))
        for level in range(1, sizes[a])
    ]
    pairs = [
        _effect([axes[a], axes[b]], [i, j], [0, 0], _interaction(scores, sizes, cases, a, b, i, j), width)
        for a, b in itertools.combinations(range(len(axes)), 2)
        for i in range(1, sizes[a])
        for j in range(1, sizes[b])
    ]
    return mains, pairs


def _others(sizes: Sequence[int], fixed: Sequence[int]) -> list[tuple[int, ...]]:
    """Every combination of the levels of the axes not in ``fixed`` (placeholders -1 for those)."""
    ranges = [range(size) if axis not in fixed else range(1) for axis, size in enumerate(sizes)]
    return [tuple(-1 if axis in fixed else level for axis, level in enumerate(combo)) for combo in itertools.product(*ranges)]


def _at(combo: tuple[int, ...], **levels: int) -> tuple[int, ...]:
    out = list(combo)
    for axis, level in levels.items():
        out[int(axis[1:])] = level
    return tuple(out)


def _main(scores: Scores, sizes: Sequence[int], cases: Sequence[str], a: int, level: int) -> list[float]:
    combos = _others(sizes, [a])
    return [
        sum(scores[_at(c, **{f"a{a}": level})][case] - scores[_at(c, **{f"a{a}": 0})][case] for c in combos) / len(combos)
        for case in cases
    ]


def _interaction(
    scores: Scores, sizes: Sequence[int], cases: Sequence[str], a: int, b: int, i: int, j: int
) -> list[float]:
    combos = _others(sizes, [a, b])

    def s(combo: tuple[int, ...], x: int, y: int, case: str) -> float:
        return scores[_at(combo, **{f"a{a}": x, f"a{b}": y})][case]

    return [
        sum(s(c, i, j, case) - s(c, i, 0, case) - s(c, 0, j, case) + s(c, 0, 0, case) for c in combos) / len(combos)
        for case in cases
    ]


def _width(scores: Scores) -> float:
    values = [v for per_case in scores.values() for v in per_case.values()]
    if not values or unit_bounds(values) is not None:
        return 1.0
    return float(max(values) - min(values)) or 1.0


def _effect(
    axes: Sequence[tuple[str, Sequence[Any]]], levels: Sequence[int], reference: Sequence[int],
    differences: list[float], width: float,
) -> Effect:
    bound = 2.0 * width * (2 if len(axes) > 1 else 1)
    paired = paired_t(differences, 0.95, width=width, bounds=(-bound / 2, bound / 2))
    ci = (paired.low, paired.high) if paired.low is not None and paired.high is not None else None
    return Effect(
        axes=tuple(name for name, _ in axes),
        levels=tuple(level_text(values[i]) for (_, values), i in zip(axes, levels, strict=True)),
        reference=tuple(level_text(values[i]) for (_, values), i in zip(axes, reference, strict=True)),
        delta=paired.delta,
        ci=ci,
        n=len(differences),
    )

"""Problems before they are placed: key paths, positions, and the final Problem list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..errors import Problem

KeyPath = tuple[str | int, ...]
Spot = tuple[int, int]


@dataclass(frozen=True)
class Issue:
    """One problem tied to a key path of the document.

    ``at_value`` places it at the value rather than the key; ``line``/``col`` override
    the lookup (YAML syntax errors); ``about`` is the part of the document the problem
    makes unreliable for later checks when that differs from ``path``.
    """

    path: KeyPath
    message: str
    at_value: bool = False
    line: int | None = None
    col: int | None = None
    about: KeyPath | None = None

    @property
    def concerns(self) -> KeyPath:
        return self.path if self.about is None else self.about


@dataclass(frozen=True)
class Spots:
    """1-based positions of the keys and values of a document, by key path."""

    keys: dict[KeyPath, Spot] = field(default_factory=dict)
    values: dict[KeyPath, Spot] = field(default_factory=dict)

    def find(self, path: KeyPath, at_value: bool = False) -> Spot | None:
        """The position of ``path``, or of its nearest ancestor that has one."""
        if at_value and path in self.values:
            return self.values[path]
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return None


def key_text(path: KeyPath) -> str:
    """``('assertions', 2, 'min')`` -> ``assertions[2].min``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def is_dirty(issues: Iterable[Issue], prefixes: Sequence[KeyPath]) -> bool:
    """True when an issue concerns a part of the document under one of ``prefixes``."""
    return any(i.concerns[: len(p)] == p for i in issues for p in prefixes)


def to_problems(issues: Iterable[Issue], spots: Spots, shown: str) -> list[Problem]:
    """Place issues in the file, drop duplicates, and sort them by position."""
    seen: set[Problem] = set()
    out: list[Problem] = []
    for issue in issues:
        problem = _place(issue, spots, shown)
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return sorted(out, key=lambda p: (p.line or 0, p.col or 0))


def _place(issue: Issue, spots: Spots, shown: str) -> Problem:
    if issue.line is not None:
        spot: Spot | None = (issue.line, issue.col or 1)
    else:
        spot = spots.find(issue.path, issue.at_value)
    line, col = spot if spot is not None else (None, None)
    return Problem(path=shown, line=line, col=col, key=key_text(issue.path), message=issue.message)

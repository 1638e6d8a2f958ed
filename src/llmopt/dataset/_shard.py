"""Shards of a dataset: ``--llmopt-shard K/N`` evaluates the cases whose id hashes to K.

The shard of a case is a function of its id alone (a SHA-256 of the id, modulo N), so
every variant of a scenario evaluates the same cases in a shard and paired deltas stay
paired; the N shards together hold every case exactly once, on any machine.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, TypeVar

__all__ = ["Shard", "ShardError", "parse_shard", "shard_of"]

_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


C = TypeVar("C", bound=_HasId)


class ShardError(ValueError):
    """A shard written otherwise than ``K/N`` with ``1 <= K <= N``."""


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` (1-based) of ``n``."""

    k: int
    n: int

    def holds(self, case_id: str) -> bool:
        """Whether the case of ``case_id`` belongs to this shard."""
        return shard_of(case_id, self.n) == self.k

    def select(self, cases: Sequence[C]) -> list[C]:
        """The cases of this shard (objects with an ``id``), in their order."""
        return [case for case in cases if self.holds(str(case.id))]

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n}

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def shard_of(case_id: str, n: int) -> int:
    """The shard (1 to ``n``) of a case id: the same on every machine and Python."""
    hashed = hashlib.sha256(case_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(hashed[:8], "big") % n + 1


def parse_shard(text: str) -> Shard:
    """The shard written as ``K/N``; ShardError saying what is wrong otherwise."""
    found = _FORM.fullmatch(text)
    if found is None:
        raise ShardError(f"{text!r} is not K/N (for example 1/4: the first of four shards)")
    k, n = int(found.group(1)), int(found.group(2))
    if n < 1:
        raise ShardError(f"{text!r}: N must be at least 1")
    if not 1 <= k <= n:
        raise ShardError(f"{text!r}: K counts from 1 to N ({n}); shards are 1/{n} ... {n}/{n}")
    return Shard(k, n)

"""What model calls used: tokens, cost, calls and cache hits."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterable


@dataclass(frozen=True)
class Usage:
    """Tokens, cost and cache hits of a variant (or of one case)."""

    input_tokens: int = 0
    output_tokens: int = 0
    #: USD spent by the calls of this run (cache hits cost nothing).
    cost_usd: float = 0.0
    cache_hits: int = 0
    calls: int = 0
    #: What the cache hits cost when they were first called.
    cached_cost_usd: float = 0.0
    #: Calls answered through a provider's batch API in this run (part of ``calls``).
    batch_calls: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
            self.cache_hits + other.cache_hits,
            self.calls + other.calls,
            self.cached_cost_usd + other.cached_cost_usd,
            self.batch_calls + other.batch_calls,
        )

    def __sub__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens - other.input_tokens,
            self.output_tokens - other.output_tokens,
            self.cost_usd - other.cost_usd,
            self.cache_hits - other.cache_hits,
            self.calls - other.calls,
            self.cached_cost_usd - other.cached_cost_usd,
            self.batch_calls - other.batch_calls,
        )

    @classmethod
    def total(cls, usages: Iterable["Usage"]) -> "Usage":
        """The sum of ``usages``, added field by field (one object made in all, not
        one per addition: a variant of 100,000 cases adds up 100,000)."""
        tokens_in = tokens_out = hits = calls = batch = 0
        cost = cached_cost = 0.0
        for u in usages:
            tokens_in += u.input_tokens
            tokens_out += u.output_tokens
            cost += u.cost_usd
            hits += u.cache_hits
            calls += u.calls
            cached_cost += u.cached_cost_usd
            batch += u.batch_calls
        return cls(tokens_in, tokens_out, cost, hits, calls, cached_cost, batch)

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict, which deep-copies every value: a cost on every case record.
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(Usage))

"""What model calls used: tokens, cost, calls and cache hits."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


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

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict, which deep-copies every value: a cost on every case record.
        return {f.name: getattr(self, f.name) for f in fields(self)}

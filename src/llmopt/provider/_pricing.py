"""Token prices (USD per million tokens) and the cost of a response.

The table ships as data (``pricing.json``); a spec overrides it per model with
``model.price: {input: X, output: Y, cached_input: Z}``. Batch calls are priced at
the batch rates (``batch_input``, ``batch_output``, ``batch_cached_input`` of an entry
or an override), else at half the synchronous ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

__all__ = ["Price", "price_for", "cost_usd", "check_price"]

PER_TOKENS = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million input, output and cached-input tokens."""

    input: float
    output: float
    cached_input: float | None = None
    #: The batch APIs' rates (None: ``BATCH_SHARE`` of the rate above).
    batch_input: float | None = None
    batch_output: float | None = None
    batch_cached_input: float | None = None

    def batched(self) -> "Price":
        """The price of a call made through the provider's batch API: the batch rates
        where named, else half of the synchronous ones."""
        cached = self.cached_input if self.cached_input is not None else self.input
        return Price(
            input=_or_share(self.batch_input, self.input),
            output=_or_share(self.batch_output, self.output),
            cached_input=_or_share(self.batch_cached_input, cached),
        )

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        """The cost of one call; cached input tokens are part of ``input_tokens``."""
        cached = min(cached_input_tokens, input_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        fresh = input_tokens - cached
        return (fresh * self.input + cached * cached_rate + output_tokens * self.output) / PER_TOKENS


#: What a batch call costs of a synchronous one, where no batch rate is named
#: (OpenAI's Batch API and Anthropic's Message Batches both bill half).
BATCH_SHARE = 0.5
_PRICE_KEYS = ("input", "output", "cached_input", "batch_input", "batch_output", "batch_cached_input")


def _or_share(batch_rate: float | None, rate: float) -> float:
    return batch_rate if batch_rate is not None else rate * BATCH_SHARE


@lru_cache(maxsize=1)
def _table() -> dict[str, Price]:
    text = resources.files("llmopt.provider").joinpath("pricing.json").read_text(encoding="utf-8")
    return {name: Price(**entry) for name, entry in json.loads(text)["models"].items()}


def _lookup(model: str) -> Price | None:
    table = _table()
    if model in table:
        return table[model]
    if model.startswith("ft:"):
        return _lookup_ft(model, table)
    best = max((name for name in table if model.startswith(name + "-")), key=len, default=None)
    return table[best] if best is not None else None


def _lookup_ft(model: str, table: Mapping[str, Price]) -> Price | None:
    base = model.split(":")[1] if model.count(":") >= 1 else ""
    for name in (f"ft:{base}", *(n for n in table if n.startswith("ft:") and base.startswith(n[3:]))):
        if name in table:
            return table[name]
    return None


def price_for(model: str | None, override: Mapping[str, Any] | None = None) -> Price | None:
    """The price of ``model``: the spec's override, else the shipped table, else None."""
    if override:
        return Price(
            input=float(override["input"]),
            output=float(override["output"]),
            **{k: float(override[k]) for k in _PRICE_KEYS[2:] if override.get(k) is not None},
        )
    return _lookup(model) if model else None


def cost_usd(price: Price | None, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
    """The cost of one call, 0.0 when the model has no known price."""
    return price.cost(input_tokens, output_tokens, cached_input_tokens) if price else 0.0


def check_price(value: Any) -> list[str]:
    """Problems with a ``model.price`` mapping (collection time)."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return ["model.price must be a mapping {input, output, cached_input}"]
    problems = [f"model.price.{key} is required (USD per million tokens)" for key in ("input", "output") if key not in value]
    for key, number in value.items():
        if key not in _PRICE_KEYS:
            problems.append(f"unknown key model.price.{key} (known: {', '.join(_PRICE_KEYS)})")
        elif not isinstance(number, (int, float)) or isinstance(number, bool) or number < 0:
            problems.append(f"model.price.{key} must be a number >= 0, got {number!r}")
    return problems

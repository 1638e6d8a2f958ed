"""A spending limit for one run: no new provider call once the budget is used up."""

from __future__ import annotations

import threading

from .errors import BudgetExceeded

__all__ = ["Budget"]


class Budget:
    """Tracks the USD spent by provider calls (cache hits cost nothing).

    With concurrency, calls already in flight when the limit is reached still finish,
    so the spend can pass the limit by at most those calls.
    """

    def __init__(self, limit_usd: float) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.refused = 0
        self._lock = threading.Lock()

    def before_call(self, where: str) -> None:
        """Raise BudgetExceeded when no new call may be made."""
        with self._lock:
            if self.spent_usd >= self.limit_usd:
                self.refused += 1
                raise BudgetExceeded(
                    f"{where}: not called: the run's budget of ${self.limit_usd:.4f} "
                    f"is used up (${self.spent_usd:.4f} spent; --llmopt-budget)"
                )

    def add(self, cost_usd: float) -> None:
        with self._lock:
            self.spent_usd += cost_usd

    @property
    def exhausted(self) -> bool:
        return self.refused > 0

"""Requests in flight per provider and base URL, lowered adaptively on rate limits.

Additive increase, multiplicative decrease: every rate-limited attempt halves the
allowed concurrency (down to 1); every success lets it grow back by about one request
per round trip, up to the configured ``model.concurrency``.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

__all__ = ["AdaptiveLimiter", "LimiterPool"]


class AdaptiveLimiter:
    """An async concurrency bound that adapts to rate limits; usable across event loops
    run one after the other (each variant evaluation runs its own loop)."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self.peak = 0
        self.rate_limited = 0
        self._condition: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _cond(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._condition is None or self._loop is not loop:
            self._condition, self._loop = asyncio.Condition(), loop
        return self._condition

    async def acquire(self) -> None:
        cond = self._cond()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < max(1, int(self.limit)))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    async def release(self) -> None:
        cond = self._cond()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()

    async def __aenter__(self) -> "AdaptiveLimiter":
        await self.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()

    def on_rate_limited(self) -> None:
        """An attempt was answered 429/529: halve the allowed concurrency."""
        self.rate_limited += 1
        self.limit = max(1.0, self.limit / 2)

    def on_success(self) -> None:
        """An attempt succeeded: grow back towards the maximum."""
        self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))


class LimiterPool:
    """One limiter per key (provider name, base URL), shared by every variant of a run.

    The first spec to use a key sets its maximum; a later, smaller ``concurrency``
    lowers it (the strictest setting wins).
    """

    def __init__(self) -> None:
        self._limiters: dict[Any, AdaptiveLimiter] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, maximum: int) -> AdaptiveLimiter:
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = self._limiters[key] = AdaptiveLimiter(maximum)
            elif maximum < limiter.maximum:
                limiter.maximum = maximum
                limiter.limit = min(limiter.limit, float(maximum))
            return limiter

    def peaks(self) -> dict[str, int]:
        """Peak requests in flight per key, for reports and benchmarks."""
        return {str(key): limiter.peak for key, limiter in self._limiters.items()}

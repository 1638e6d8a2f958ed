"""Requests in flight per provider and base URL, lowered adaptively on rate limits.

Additive increase, multiplicative decrease: every rate-limited attempt halves the
allowed concurrency (down to 1); every success lets it grow back by about one request
per round trip, up to the configured ``model.concurrency``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import TracebackType
from typing import Any

__all__ = ["AdaptiveLimiter", "LimiterPool"]


class AdaptiveLimiter:
    """An async concurrency bound that adapts to rate limits; usable across event loops
    run one after the other (each variant evaluation runs its own loop).

    Waiters are served first come, first served, and a freed slot wakes exactly one of
    them: with hundreds of cases queued, a release costs one wake-up, not one per
    waiter.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self.peak = 0
        self.rate_limited = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _allowed(self) -> int:
        return max(1, int(self.limit))

    def _take(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new evaluation: waiters of a finished loop are gone
            self._loop, self._waiters = loop, deque()
        if not self._waiters and self.in_flight < self._allowed():
            self._take()
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as the waiter was cancelled
            else:
                self._discard(waiter)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    async def __aenter__(self) -> "AdaptiveLimiter":
        await self.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def on_rate_limited(self) -> None:
        """An attempt was answered 429/529: halve the allowed concurrency."""
        self.rate_limited += 1
        self.limit = max(1.0, self.limit / 2)

    def on_success(self) -> None:
        """An attempt succeeded: grow back towards the maximum."""
        self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to the longest-waiting waiters."""
        while self._waiters and self.in_flight < self._allowed():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    def _discard(self, waiter: "asyncio.Future[None]") -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass


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

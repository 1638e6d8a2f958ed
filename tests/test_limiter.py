"""The adaptive concurrency bound of hosted providers."""

from __future__ import annotations

import asyncio

import pytest

from llmopt.provider._limits import AdaptiveLimiter, LimiterPool


async def _run(limiter: AdaptiveLimiter, jobs: int, order: list[int], pause: float = 0.001) -> None:
    async def job(i: int) -> None:
        async with limiter:
            order.append(i)
            assert limiter.in_flight <= limiter.maximum
            await asyncio.sleep(pause)

    await asyncio.gather(*(job(i) for i in range(jobs)))


def test_slots_go_first_come_first_served_and_the_bound_holds() -> None:
    limiter = AdaptiveLimiter(3)
    order: list[int] = []
    asyncio.run(_run(limiter, 20, order))
    assert order == list(range(20))
    assert limiter.peak == 3 and limiter.in_flight == 0


def test_rate_limits_halve_the_bound_and_successes_grow_it_back() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.on_rate_limited()
    limiter.on_rate_limited()
    assert limiter.limit == 2.0 and limiter.rate_limited == 2

    async def main() -> list[int]:
        seen: list[int] = []

        async def job() -> None:
            async with limiter:
                seen.append(limiter.in_flight)
                await asyncio.sleep(0.001)

        await asyncio.gather(*(job() for _ in range(10)))
        return seen

    assert max(asyncio.run(main())) == 2
    for _ in range(100):
        limiter.on_success()
    assert limiter.limit == 8.0


def test_growing_the_bound_wakes_waiters_at_once() -> None:
    limiter = AdaptiveLimiter(4)
    limiter.limit = 1.0

    async def main() -> int:
        await limiter.acquire()
        waiting = [asyncio.ensure_future(limiter.acquire()) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiting)
        for _ in range(20):
            limiter.on_success()  # the limit grows past 1: free slots go to the waiters
        await asyncio.sleep(0)
        return sum(w.done() for w in waiting)

    assert asyncio.run(main()) == 3
    assert limiter.in_flight == 4


def test_a_cancelled_waiter_leaves_no_slot_taken() -> None:
    limiter = AdaptiveLimiter(1)

    async def main() -> None:
        await limiter.acquire()
        waiter = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        limiter.release()
        assert limiter.in_flight == 0
        await asyncio.wait_for(limiter.acquire(), 1)  # the freed slot is not held by the cancelled waiter
        limiter.release()

    asyncio.run(main())


def test_one_limiter_serves_evaluations_on_successive_event_loops() -> None:
    limiter = LimiterPool().get(("openai", ""), 2)
    for _ in range(3):
        order: list[int] = []
        asyncio.run(_run(limiter, 6, order))
        assert order == list(range(6))
    assert limiter.in_flight == 0 and limiter.peak == 2


def test_the_strictest_concurrency_of_a_key_wins() -> None:
    pool = LimiterPool()
    first = pool.get(("openai", "http://127.0.0.1:1/v1"), 16)
    assert pool.get(("openai", "http://127.0.0.1:1/v1"), 4) is first
    assert first.maximum == 4 and first.limit == 4.0
    assert pool.get(("openai", "http://127.0.0.1:1/v1"), 32).maximum == 4

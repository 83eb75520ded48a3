"""Adaptive concurrency: halves on overload, grows by about one per round, never exceeds it."""

from __future__ import annotations

import asyncio

from catalog_sync.ils.concurrency import AdaptiveConcurrency


def test_overload_halves_the_limit_once_per_cooldown() -> None:
    limiter = AdaptiveConcurrency(16, cooldown=60.0)
    limiter.observe(0.01, overloaded=True)
    limiter.observe(0.01, overloaded=True)  # same wave of 429s: no second cut

    assert limiter.limit == 8
    assert limiter.decreases == 1


def test_good_answers_grow_the_limit_additively_back_to_the_maximum() -> None:
    limiter = AdaptiveConcurrency(16, cooldown=0.0)
    for _ in range(3):
        limiter.observe(0.01, overloaded=True)
    assert limiter.limit == 2

    for _ in range(3):
        limiter.observe(0.01, overloaded=False)
    assert limiter.limit == 3  # +1/limit per answer: about one more per round of answers

    for _ in range(500):
        limiter.observe(0.01, overloaded=False)
    assert limiter.limit == 16


def test_latency_far_above_the_best_seen_counts_as_overload() -> None:
    limiter = AdaptiveConcurrency(8, cooldown=0.0, latency_factor=4.0, latency_floor=0.05)
    for _ in range(20):
        limiter.observe(0.01, overloaded=False)
    for _ in range(20):
        limiter.observe(0.5, overloaded=False)

    assert limiter.limit < 8 and limiter.decreases >= 1


def test_requests_in_flight_never_exceed_the_current_limit() -> None:
    async def run() -> list[int]:
        limiter = AdaptiveConcurrency(8, cooldown=0.0)
        in_flight = 0
        seen: list[int] = []

        async def request(n: int) -> None:
            nonlocal in_flight
            async with limiter.slot():
                in_flight += 1
                seen.append(in_flight)
                await asyncio.sleep(0.001)
                in_flight -= 1
                if n == 20:
                    limiter.observe(0.001, overloaded=True)  # 8 -> 4
                    limiter.observe(0.001, overloaded=True)  # 4 -> 2

        await asyncio.gather(*(request(n) for n in range(21)))
        seen.clear()
        await asyncio.gather(*(request(n) for n in range(100, 110)))
        return seen

    later = asyncio.run(run())
    assert max(later) == 2  # cut to 2 while permits were still out: enforced at once

"""Adaptive concurrency (AIMD) for calls to an ILS, on top of an asyncio.Semaphore."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AdaptiveConcurrency:
    """At most `limit` requests in flight; the limit grows by one per round trip while the ILS
    answers well and halves on 429/503, timeouts or latency well above its best.

    The semaphore holds `maximum` permits; lowering the limit keeps permits back as they are
    released (a debt), raising it hands them back, so no waiter is ever woken just to be parked.
    """

    def __init__(
        self,
        maximum: int,
        minimum: int = 1,
        latency_factor: float = 4.0,
        latency_floor: float = 0.25,
        cooldown: float = 1.0,
    ) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self._semaphore = asyncio.Semaphore(maximum)
        self._limit = float(maximum)
        self._withheld = 0
        self._debt = 0
        self._latency_factor = latency_factor
        self._latency_floor = latency_floor
        self._cooldown = cooldown
        self._last_decrease = -math.inf
        self._ewma: float | None = None
        self._best: float | None = None
        self.decreases = 0

    @property
    def limit(self) -> int:
        return max(self.minimum, math.floor(self._limit))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._semaphore.acquire()
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        if self._debt:
            self._debt -= 1
            self._withheld += 1
        else:
            self._semaphore.release()

    def observe(self, latency: float, overloaded: bool) -> None:
        """Feed one finished request: its latency and whether the ILS said it was overloaded."""
        self._ewma = latency if self._ewma is None else 0.8 * self._ewma + 0.2 * latency
        self._best = self._ewma if self._best is None else min(self._best * 1.001, self._ewma)
        slow = self._ewma > max(self._latency_floor, self._best * self._latency_factor)
        if overloaded or slow:
            now = time.monotonic()
            if now - self._last_decrease >= self._cooldown:
                self._last_decrease = now
                self._limit = max(float(self.minimum), self._limit / 2)
                self.decreases += 1
                self._reconcile()
            return
        if self._limit < self.maximum:
            self._limit = min(float(self.maximum), self._limit + 1.0 / self._limit)
            self._reconcile()

    def _reconcile(self) -> None:
        in_circulation = self.maximum - self._withheld - self._debt
        target = self.limit
        while in_circulation > target:
            self._debt += 1
            in_circulation -= 1
        while in_circulation < target:
            if self._debt:
                self._debt -= 1
            else:
                self._withheld -= 1
                self._semaphore.release()
            in_circulation += 1

"""Adaptive concurrency (AIMD) for calls to an ILS, inside an asyncio.Semaphore hard cap."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AdaptiveConcurrency:
    """At most `limit` requests in flight; the limit grows by about one per round trip while
    the ILS answers well and halves on 429/503, timeouts or latency far above its best.

    The asyncio.Semaphore is the configured maximum (`max_concurrency`); the adaptive limit
    is enforced inside it, so a shrinking limit takes effect at once, not as permits return.
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
        self._changed = asyncio.Event()
        self._in_flight = 0
        self._limit = float(maximum)
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

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            # Single-threaded loop: nothing runs between the check and the increment.
            while self._in_flight >= self.limit:
                self._changed.clear()
                await self._changed.wait()
            self._in_flight += 1
            try:
                yield
            finally:
                self._in_flight -= 1
                self._changed.set()

    def observe(self, latency: float, overloaded: bool) -> None:
        """Feed one finished request: its latency and whether the ILS said it was overloaded."""
        self._ewma = latency if self._ewma is None else 0.8 * self._ewma + 0.2 * latency
        # The best latency drifts up slowly so one lucky early answer does not pin it forever.
        self._best = self._ewma if self._best is None else min(self._best * 1.001, self._ewma)
        slow = self._ewma > max(self._latency_floor, self._best * self._latency_factor)
        if overloaded or slow:
            now = time.monotonic()
            # One cut per cooldown: a burst of 429s from one wave is one signal, not many.
            if now - self._last_decrease >= self._cooldown:
                self._last_decrease = now
                self._limit = max(float(self.minimum), self._limit / 2)
                self.decreases += 1
            return
        if self._limit < self.maximum:
            self._limit = min(float(self.maximum), self._limit + 1.0 / self._limit)
            self._changed.set()

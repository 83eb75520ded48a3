"""Circuit breaker per ILS: after sustained failure, fail fast instead of hammering a down ILS."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from catalog_sync.ils.errors import ILSUnavailable


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after `threshold` failures in a row, or when `ratio` of the last `window` requests
    failed; after `reset_after` seconds one probe request decides whether it closes again.

    Failures are 5xx answers, timeouts and connection errors; any other answer, 429 ("alive,
    slow down") included, is a success: the ILS is up.
    """

    def __init__(
        self,
        label: str,
        threshold: int = 10,
        reset_after: float = 15.0,
        window: int = 20,
        ratio: float = 0.8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.threshold = threshold
        self.reset_after = reset_after
        self.ratio = ratio
        self._clock = clock
        self._recent: deque[bool] = deque(maxlen=window)
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._last_failure = ""
        self.state = BreakerState.CLOSED

    def before_request(self) -> None:
        """Raise ILSUnavailable while open (except for the single half-open probe)."""
        if self.state is BreakerState.CLOSED:
            return
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.reset_after:
                raise self._open_error()
            self.state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
        if self._probe_in_flight:
            raise self._open_error()
        self._probe_in_flight = True

    def abandon(self) -> None:
        """A request ended without a verdict (cancelled): let another probe go."""
        self._probe_in_flight = False

    def record_success(self) -> None:
        self._recent.append(True)
        self._consecutive = 0
        self._probe_in_flight = False
        self.state = BreakerState.CLOSED

    def record_failure(self, what: str) -> None:
        self._recent.append(False)
        self._consecutive += 1
        self._last_failure = what
        self._probe_in_flight = False
        failed = self._recent.count(False)
        full = len(self._recent) == self._recent.maxlen
        sustained = full and failed >= self.ratio * len(self._recent)
        if self.state is BreakerState.HALF_OPEN or self._consecutive >= self.threshold or sustained:
            if self.state is not BreakerState.OPEN:
                self._opened_at = self._clock()
            self.state = BreakerState.OPEN

    def _open_error(self) -> ILSUnavailable:
        return ILSUnavailable(
            f"{self.label} is unavailable: circuit open after {self._consecutive} failed requests "
            f"in a row (last: {self._last_failure}); failing fast, retry later",
            reason="circuit_open",
        )

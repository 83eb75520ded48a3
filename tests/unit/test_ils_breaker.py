"""Circuit breaker: opens on sustained failure only, probes once, names the ILS when open."""

from __future__ import annotations

import random

import pytest

from catalog_sync.ils.breaker import BreakerState, CircuitBreaker
from catalog_sync.ils.errors import ILSUnavailable

LABEL = "ILS 'ils_default' at http://koha.example:8080"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_consecutive_failures_open_it_and_the_error_names_the_ils() -> None:
    breaker = CircuitBreaker(LABEL, threshold=3, clock=ManualClock())
    for _ in range(3):
        breaker.before_request()
        breaker.record_failure("HTTP 503")

    with pytest.raises(ILSUnavailable) as caught:
        breaker.before_request()
    assert breaker.state is BreakerState.OPEN
    assert caught.value.reason == "circuit_open"
    assert LABEL in str(caught.value) and "HTTP 503" in str(caught.value)


def test_a_quarter_of_requests_failing_at_random_never_opens_it() -> None:
    breaker = CircuitBreaker(LABEL, threshold=10, window=20, ratio=0.8, clock=ManualClock())
    draw = random.Random(42)
    for _ in range(5000):
        breaker.before_request()
        if draw.random() < 0.25:
            breaker.record_failure("HTTP 503")
        else:
            breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_after_the_reset_time_one_probe_goes_through_and_success_closes_it() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(LABEL, threshold=2, reset_after=15.0, clock=clock)
    breaker.record_failure("ConnectError")
    breaker.record_failure("ConnectError")
    clock.now += 15.0

    breaker.before_request()  # the probe
    with pytest.raises(ILSUnavailable):
        breaker.before_request()  # everyone else still fails fast
    breaker.record_success()

    assert breaker.state is BreakerState.CLOSED
    breaker.before_request()


def test_a_failed_probe_opens_it_again_for_another_reset_period() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(LABEL, threshold=1, reset_after=10.0, clock=clock)
    breaker.record_failure("HTTP 500")
    clock.now += 10.0
    breaker.before_request()
    breaker.record_failure("HTTP 500")
    clock.now += 5.0

    with pytest.raises(ILSUnavailable):
        breaker.before_request()
    assert breaker.state is BreakerState.OPEN


def test_a_cancelled_probe_frees_the_way_for_the_next_one() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(LABEL, threshold=1, reset_after=1.0, clock=clock)
    breaker.record_failure("ReadTimeout")
    clock.now += 1.0
    breaker.before_request()

    breaker.abandon()

    breaker.before_request()  # a new probe, not "circuit open"
    assert breaker.state is BreakerState.HALF_OPEN

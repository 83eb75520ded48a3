"""Retry pacing: Retry-After is honoured over a shorter backoff, backoff grows otherwise."""

from __future__ import annotations

import asyncio

from tenacity import AsyncRetrying, RetryCallState

from catalog_sync.ils import ILSSettings
from catalog_sync.ils.transport import ILSTransport, RetryableFailure


def after_failure(attempt: int, failure: RetryableFailure) -> RetryCallState:
    state = RetryCallState(AsyncRetrying(), None, (), {})
    state.attempt_number = attempt
    state.set_exception((RetryableFailure, failure, None))
    return state


def waits(transport: ILSTransport, failure: RetryableFailure) -> list[float]:
    return [transport._wait(after_failure(n, failure)) for n in range(1, 6)]


def test_retry_after_sets_the_floor_and_backoff_grows_without_it() -> None:
    transport = ILSTransport(ILSSettings(base_url="http://127.0.0.1:9"))
    try:
        limited = RetryableFailure("429", status=429, retry_after=7.0, maybe_applied=False)
        failing = RetryableFailure("503", status=503, retry_after=None, maybe_applied=True)

        assert all(wait >= 7.0 for wait in waits(transport, limited))
        backoff = waits(transport, failing)
        assert backoff[0] < 1.0 and backoff[-1] > backoff[0] * 4
    finally:
        asyncio.run(transport.aclose())

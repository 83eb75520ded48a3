"""Records of a chunk worked on concurrently, bounded; infrastructure failures fail the task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.exc import DBAPIError

from catalog_sync.leases import LeaseManager
from catalog_sync.models import StagedChange
from catalog_sync.pipeline.outcomes import Outcome

# Records being worked on at once. The ILS client bounds requests by itself; this bounds the
# memory of records read and parsed ahead of it, which otherwise grows with the chunk size
# on an initial load (bench/README.md: +42 MB for 2,000 creates).
MAX_RECORDS_IN_FLIGHT = 64
# An ILS that gathers records into batch requests (FOLIO) needs a batch's worth and more in
# flight, or the bound above caps every batch: commit_changes sets it from the client's
# `records_at_once` (client_bounds), the pipeline knowing no ILS.
_in_flight: ContextVar[int] = ContextVar("records_in_flight", default=MAX_RECORDS_IN_FLIGHT)


@contextmanager
def records_in_flight(limit: int) -> Iterator[None]:
    """Within this block, each_bounded works on up to `limit` records at once."""
    if limit < 1:
        raise ValueError("at least one record is worked on at a time")
    token = _in_flight.set(limit)
    try:
        yield
    finally:
        _in_flight.reset(token)


@contextmanager
def client_bounds(client: object, leases: LeaseManager | None) -> Iterator[None]:
    """Records in flight and leases held as the client asks (`records_at_once`), wherever the
    commit runs (task, CLI, bench); a client that asks nothing keeps the bounds around it."""
    at_once = getattr(client, "records_at_once", None)
    if not isinstance(at_once, int) or at_once < 1:
        yield
        return
    if leases is not None:
        leases.allow_held(at_once)
    with records_in_flight(at_once):
        yield


async def each_bounded(
    pending: Sequence[StagedChange], run: Callable[[StagedChange], Awaitable[Outcome]]
) -> list[Outcome]:
    gate = asyncio.Semaphore(_in_flight.get())

    async def one(change: StagedChange) -> Outcome:
        async with gate:
            return await run(change)

    # Per-record problems are outcomes already (_apply). What still raises is infrastructure
    # (the state store, the ILS past its retries): the records in flight finish first, each
    # with its acknowledgement, and then the task fails with that cause for Airflow to retry.
    results = await asyncio.gather(*(one(c) for c in pending), return_exceptions=True)
    for result in results:
        if isinstance(result, DBAPIError):  # SQLAlchemy's own message names no store
            raise StateStoreFailed(
                f"the state store failed ({type(result.orig).__name__}: {result.orig}); records "
                "already acknowledged stay so and the task's retry resumes after them"
            ) from result
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, Outcome)]


class StateStoreFailed(RuntimeError):
    """The state store refused a step of the commit (locked, gone, out of space, ...)."""

    reason = "state_store_failed"

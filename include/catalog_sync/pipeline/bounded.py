"""Records of a chunk worked on concurrently, bounded; infrastructure failures fail the task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.exc import DBAPIError

from catalog_sync.models import StagedChange
from catalog_sync.pipeline.outcomes import Outcome

# Records being worked on at once. The ILS client bounds requests by itself; this bounds the
# memory of records read and parsed ahead of it, which otherwise grows with the chunk size
# on an initial load (bench/README.md: +42 MB for 2,000 creates).
MAX_RECORDS_IN_FLIGHT = 64


async def each_bounded(
    pending: Sequence[StagedChange], run: Callable[[StagedChange], Awaitable[Outcome]]
) -> list[Outcome]:
    gate = asyncio.Semaphore(MAX_RECORDS_IN_FLIGHT)

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

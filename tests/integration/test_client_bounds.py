"""commit_changes widens the records in flight and the leases held to what a batching ILS asks
for (`records_at_once`), wherever it runs: real Redis leases, the pipeline's own bound."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from tests.unit.test_records_in_flight import changes

from catalog_sync.leases import LeaseManager, LeaseSettings, record_scope
from catalog_sync.models import StagedChange
from catalog_sync.pipeline.bounded import MAX_RECORDS_IN_FLIGHT, client_bounds, each_bounded
from catalog_sync.pipeline.outcomes import Outcome, Result

pytestmark = pytest.mark.timeout(120)


class Batching:
    """What the pipeline reads of a batching adapter (FolioAdapter.records_at_once: 768)."""

    records_at_once = 300


class Plain:
    """An adapter that asks nothing (Koha)."""


def most_leases_held(redis_url: str, client: object, n: int) -> int:
    """The most record leases held at once while each_bounded works through n creates, as
    commit_changes runs them: inside client_bounds, with a LeaseManager made with defaults."""
    held = peak = 0
    done = asyncio.Event()

    async def main() -> None:
        async with LeaseManager.from_url(redis_url) as leases:

            async def run(change: StagedChange) -> Outcome:
                nonlocal held, peak
                async with leases.hold([record_scope("ils_bounds", change.record_key)]):
                    held += 1
                    peak = max(peak, held)
                    if peak >= n or held >= 300:
                        done.set()
                    # Each holder waits until the most the test looks for are held, or for 2 s:
                    # long enough for every lease the bound admits to be taken, and it ends
                    # the test when the bound is smaller than asked.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), 2.0)
                    held -= 1
                return Outcome(Result.CREATED)

            with client_bounds(client, leases):
                await each_bounded(changes(n), run)

    asyncio.run(main())
    return peak


def test_a_batching_ils_gets_its_records_at_once_under_lease(redis_url: str) -> None:
    assert most_leases_held(redis_url, Batching(), 400) == 300


def test_an_ils_that_asks_nothing_keeps_the_lease_default(redis_url: str) -> None:
    assert LeaseSettings().max_held == 16 < MAX_RECORDS_IN_FLIGHT
    assert most_leases_held(redis_url, Plain(), 48) == 16


def test_widening_is_never_narrowing(redis_url: str) -> None:
    async def main() -> None:
        async with LeaseManager.from_url(redis_url, LeaseSettings(max_held=32)) as leases:
            leases.allow_held(8)
            keys = [record_scope("ils_bounds", f"w{n}") for n in range(32)]
            # 32 single leases at once still fit: a smaller ask left the 32 slots as they were.
            async with asyncio.timeout(30):
                entered = asyncio.Event()
                count = 0

                async def one(key: str) -> None:
                    nonlocal count
                    async with leases.hold([key]):
                        count += 1
                        if count == len(keys):
                            entered.set()
                        await entered.wait()

                await asyncio.gather(*(one(k) for k in keys))

    asyncio.run(main())

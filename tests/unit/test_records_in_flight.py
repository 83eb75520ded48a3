"""How many records of a chunk each_bounded works on at once (pipeline/bounded.py)."""

from __future__ import annotations

import asyncio

import pytest

from catalog_sync.models import ChangeAction, StagedChange
from catalog_sync.pipeline.bounded import (
    MAX_RECORDS_IN_FLIGHT,
    each_bounded,
    records_in_flight,
)
from catalog_sync.pipeline.outcomes import Outcome, Result

pytestmark = pytest.mark.timeout(60)


def changes(n: int) -> list[StagedChange]:
    return [
        StagedChange(
            record_key=f"k{i:04d}",
            action=ChangeAction.CREATE,
            fingerprint="f",
            offset=i,
            length=1,
            correlation_id=f"c{i}",
        )
        for i in range(n)
    ]


def most_at_once(pending: list[StagedChange]) -> int:
    """The most runs in progress at once while each_bounded works through `pending`."""
    running = peak = 0

    async def run(_change: StagedChange) -> Outcome:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)  # let every run the bound admits start before any ends
        await asyncio.sleep(0)
        running -= 1
        return Outcome(Result.CREATED)

    async def main() -> None:
        assert len(await each_bounded(pending, run)) == len(pending)

    asyncio.run(main())
    return peak


def test_the_default_bound_holds_records_in_flight_to_64() -> None:
    assert most_at_once(changes(300)) == MAX_RECORDS_IN_FLIGHT == 64


def test_a_batching_ils_gets_as_many_in_flight_as_it_asks_for() -> None:
    # FOLIO's adapter batches hundreds of records per request: 64 in flight would cap them.
    with records_in_flight(768):
        assert most_at_once(changes(1000)) == 768
    assert most_at_once(changes(300)) == 64  # only within the block


def test_at_least_one_record_is_in_flight() -> None:
    with pytest.raises(ValueError), records_in_flight(0):
        pass

"""The Coalescer that gathers concurrent FOLIO calls into batches (ils/folio/batcher.py)."""

from __future__ import annotations

import asyncio

import pytest

from catalog_sync.ils.folio.batcher import Coalescer


class Refused(Exception):
    pass


def test_each_caller_gets_its_own_answer_or_its_own_exception() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        return [Refused(n) if n == 3 else n * 10 for n in items]

    async def main() -> list[int | BaseException]:
        coalescer: Coalescer[int, int] = Coalescer(flush, size=4)
        return await asyncio.gather(
            *(coalescer.submit(n) for n in range(6)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert [r for r in results if not isinstance(r, BaseException)] == [0, 10, 20, 40, 50]
    assert isinstance(results[3], Refused)
    assert batches == [[0, 1, 2, 3], [4, 5]]


def test_items_arriving_while_the_flushes_run_go_out_together_after_them() -> None:
    # A slow FOLIO (or its rate limit) makes batches larger instead of queueing small ones.
    batches: list[list[int]] = []

    async def main() -> None:
        gate = asyncio.Event()

        async def flush(items: list[int]) -> list[int | BaseException]:
            batches.append(items)
            await gate.wait()
            return list(items)

        coalescer: Coalescer[int, int] = Coalescer(flush, size=100, concurrency=1)
        first = asyncio.ensure_future(coalescer.submit(0))
        while not batches:  # the first flush is running and holds the only slot
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(coalescer.submit(n)) for n in range(1, 6)]
        for _ in range(20):  # their idle time passes many times over: still parked
            await asyncio.sleep(0.01)
        assert batches == [[0]]
        gate.set()
        assert await first == 0 and await asyncio.gather(*later) == [1, 2, 3, 4, 5]

    asyncio.run(main())
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_a_whole_flush_failure_reaches_every_caller_of_that_batch() -> None:
    async def flush(items: list[int]) -> list[int | BaseException]:
        raise Refused("FOLIO down")

    async def main() -> list[int | BaseException]:
        coalescer: Coalescer[int, int] = Coalescer(flush, size=2)
        return await asyncio.gather(
            *(coalescer.submit(n) for n in range(3)), return_exceptions=True
        )

    assert all(isinstance(r, Refused) for r in asyncio.run(main()))


def test_a_batch_holds_at_least_one_item() -> None:
    async def flush(items: list[int]) -> list[int | BaseException]:
        return list(items)

    with pytest.raises(ValueError):
        Coalescer(flush, size=0)


def test_folio_batches_gather_records_arriving_in_bursts_a_few_ms_apart() -> None:
    # Records reach the adapter in bursts (state-store group commits, lease grants) with a few
    # ms between them; with a flush slot free, a 5 ms idle sent one small batch per burst.
    from catalog_sync.ils.folio.writes import IDLE, coalescer

    batches: list[list[int]] = []

    async def flush(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        return list(items)

    async def main() -> None:
        folio: Coalescer[int, int] = coalescer(flush, 256)
        parked: list[asyncio.Future[int]] = []
        for burst in range(5):
            parked += [asyncio.ensure_future(folio.submit(burst * 10 + n)) for n in range(10)]
            await asyncio.sleep(0.005)  # a tenth of the FOLIO idle
        assert await asyncio.gather(*parked) == list(range(50))

    assert IDLE >= 0.05
    asyncio.run(main())
    assert batches == [list(range(50))]

"""Concurrent record calls to the FOLIO adapter go out as batch requests, each record answered
alone (issue 18): real HTTP to the FOLIO emulator, real LoC records, real Redis for the gate."""

from __future__ import annotations

import asyncio
import copy
import io
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pymarc
import pytest
from tests.folio_emulator import (
    Okapi,
    edit_in_folio,
    instances,
    settings,
    srs_record,
    stamped,
    start_folio,
)

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils.errors import ILSRejected, ILSVersionConflict
from catalog_sync.ils.folio.adapter import FolioAdapter
from catalog_sync.ils.folio.writes import BATCH_RECORDS
from catalog_sync.pipeline.commit_job import marcxml
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(120)
T = TypeVar("T")
Sent = Counter[tuple[str, str]]
INSTANCE_BATCH = ("POST", "/instance-storage/batch/synchronous")
SRS_CREATE = ("POST", "/source-storage/batch/records")
SRS_UPDATE = ("PUT", "/source-storage/batch/parsed-records")
SRS_FETCH = ("POST", "/source-storage/batch/parsed-records/fetch")
RETRIEVE = ("POST", "/instance-storage/instances/retrieve")


def run(
    url: str, body: Callable[[FolioAdapter, Sent], Awaitable[T]], batch_size: int = 4
) -> tuple[T, Sent]:
    """`body` on a fresh adapter; every request it sends is counted, as (method, path), off
    the wire into the Counter it is given (and returned)."""
    sent: Sent = Counter()

    async def main() -> T:
        async with FolioAdapter(settings(url), batch_size=batch_size) as ils:

            async def seen(request: httpx.Request) -> None:
                sent[(request.method, request.url.path)] += 1

            ils.session._http.event_hooks["request"].append(seen)
            return await body(ils, sent)

    return asyncio.run(main()), sent


async def create_all(ils: FolioAdapter, records: list[pymarc.Record], tag: str) -> list[str]:
    return list(
        await asyncio.gather(
            *(
                ils.create_biblio(stamped(r, f"{tag}-{n}"), correlation_id=f"{tag}-{n}")
                for n, r in enumerate(records)
            )
        )
    )


def test_concurrent_creates_go_as_one_batch_request_per_batch_size(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    records, size = loc_records[:10], 4

    ids, sent = run(folio.url, lambda ils, _: create_all(ils, records, "batch"), batch_size=size)

    assert len(set(ids)) == 10
    batches = math.ceil(len(records) / size)
    # Per batch: one instance upsert, one retrieve of the HRIDs, one SRS batch save.
    assert sent[INSTANCE_BATCH] == batches
    assert sent[SRS_CREATE] == batches
    assert sent[RETRIEVE] == batches
    for biblio_id in ids:  # and each instance has its own MARC, linked
        srs = srs_record(okapi, biblio_id)
        assert srs.status_code == 200 and srs.json()["externalIdsHolder"]["instanceId"] == biblio_id


def test_concurrent_reads_share_one_retrieve_and_one_srs_fetch(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    records = loc_records[:4]

    async def body(ils: FolioAdapter, sent: Sent) -> tuple[list[bytes | None], Sent]:
        ids = await create_all(ils, records, "read")
        before = Counter(sent)
        copies = await asyncio.gather(*(ils.get_biblio(i, correlation_id="r") for i in ids))
        return list(copies), before

    (copies, before), sent = run(folio.url, body, batch_size=4)
    reads = sent - before
    assert all(c is not None for c in copies)
    for record, copy_back in zip(records, copies, strict=True):  # each caller its own copy
        assert copy_back is not None
        [back] = pymarc.parse_xml_to_array(io.BytesIO(copy_back))
        assert back["245"]["a"] == record["245"]["a"]
    assert reads == Counter({RETRIEVE: 1, SRS_FETCH: 1})


def test_one_record_folio_refuses_fails_alone_with_folios_message(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    records = loc_records[:4]

    async def body(ils: FolioAdapter, _: Sent) -> tuple[list[str], list[object]]:
        ids = await create_all(ils, records, "bad")
        await asyncio.gather(*(ils.get_biblio(i, correlation_id="r") for i in ids))
        # One read copy carries a value FOLIO's schema refuses (statusId must be a UUID): the
        # batch it rides in gets RMB's 422 as a whole and is split until that record is alone.
        ils._read[ids[1]] = {**ils._read[ids[1]], "statusId": "withdrawn"}
        changed = []
        for r in records:
            c = copy.deepcopy(r)
            c["245"]["a"] = "Batched new title /"
            changed.append(c)
        results = await asyncio.gather(
            *(
                ils.update_biblio(i, marcxml(c), correlation_id=f"u-{n}")
                for n, (i, c) in enumerate(zip(ids, changed, strict=True))
            ),
            return_exceptions=True,
        )
        return ids, list(results)

    (ids, results), sent = run(folio.url, body, batch_size=4)
    failed = [n for n, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [1]
    refused = results[1]
    assert isinstance(refused, ILSRejected) and refused.status == 422
    assert refused.reason == "folio_invalid" and "must match" in str(refused)
    titles = {i["id"]: str(i["title"]) for i in instances(okapi)}
    assert [titles[i].startswith("Batched new title") for i in ids] == [True, False, True, True]
    # The whole batch once, then split halves (and their halves) around the bad record only.
    assert sent[INSTANCE_BATCH] > 2 and sent[SRS_UPDATE] == 1


def test_a_version_conflict_is_drift_for_that_record_only(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    records = loc_records[4:7]

    async def body(ils: FolioAdapter, _: Sent) -> tuple[list[str], list[object]]:
        ids = await create_all(ils, records, "conflict")
        await asyncio.gather(*(ils.get_biblio(i, correlation_id="r") for i in ids))
        edit_in_folio(okapi, ids[1])  # the middle one, after our read
        results = await asyncio.gather(
            *(
                ils.update_biblio(i, marcxml(r), correlation_id=f"c-{n}")
                for n, (i, r) in enumerate(zip(ids, records, strict=True))
            ),
            return_exceptions=True,
        )
        return ids, list(results)

    (ids, results), _ = run(folio.url, body, batch_size=3)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ILSVersionConflict)
    assert okapi.get(f"/instance-storage/instances/{ids[1]}").json()["_version"] == 2


def test_workers_share_the_folio_rate_limit_through_redis(
    folio: ServiceProcess, redis_url: str
) -> None:
    # FOLIO allows 5 requests/s; two clients (two workers' tasks) configured for 4/s between
    # them book their slots in one Redis bucket, so together they never meet a 429. A burst of
    # 2 lets one request arrive up to 200 ms early: with a burst of 1, requests booked 250 ms
    # apart met a 429 when a loaded CI host delayed one past the next's 50 ms of slack. Two
    # clients each keeping 4/s alone still send pairs at once, which this bucket refuses.
    control = EmulatorControl(folio.url)
    control.set_faults(rate_limit=5, burst=2)

    async def one() -> None:
        async with FolioAdapter(settings(folio.url, rate_limit=4), redis_url) as ils:
            for _ in range(3):
                await ils.check_access(correlation_id="rate")

    async def both() -> None:
        await asyncio.gather(one(), one())

    try:
        asyncio.run(both())
        counters = control.counters()
    finally:
        control.clear_faults()
    assert counters["requests"] == 8  # two logins, six calls: none refused and resent
    assert counters.get("rate_limited", 0) == 0


def test_a_login_turned_away_by_the_rate_limit_waits_and_logs_in(folio: ServiceProcess) -> None:
    # Several workers logging in at once against a FOLIO rate limit: a 429 to a login is no
    # credentials problem (an auth error would fail the task for good), so it waits its turn.
    control = EmulatorControl(folio.url)
    control.set_faults(rate_limit=1, burst=1)

    async def one() -> str:
        async with FolioAdapter(settings(folio.url)) as ils:
            return await ils.check_access(correlation_id="login")

    async def several() -> list[str]:
        return list(await asyncio.gather(one(), one()))

    try:
        answers = asyncio.run(several())
        counters = control.counters()
    finally:
        control.clear_faults()
    assert len(answers) == 2 and counters.get("rate_limited", 0) >= 1


def test_a_commit_tasks_worth_of_creates_goes_in_batches_of_hundreds(
    tmp_path: Path, loc_records: list[pymarc.Record]
) -> None:
    # The rate limit in front of FOLIO counts requests, and a batch of creates costs three
    # however many records it carries: the adapter's own batch size is a few hundred, and a
    # commit task is told to hold enough records at once to fill them.
    records = [loc_records[n % len(loc_records)] for n in range(600)]
    assert FolioAdapter.records_at_once >= 2 * BATCH_RECORDS >= 500

    # An emulator taking FOLIO's default batches (this module's takes 50, to test the 413s).
    folio = start_folio(tmp_path)
    try:
        ids, sent = run(
            folio.url, lambda ils, _: create_all(ils, records, "full"), batch_size=BATCH_RECORDS
        )
    finally:
        folio.stop()

    assert len(set(ids)) == 600
    batches = math.ceil(len(records) / BATCH_RECORDS)  # 3 (64 records a batch: 10)
    assert sent[INSTANCE_BATCH] == sent[SRS_CREATE] == sent[RETRIEVE] == batches


def test_a_batch_larger_than_folio_takes_is_halved_for_srs_too(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    # This module's emulator answers 413 above 50 records a batch, as a FOLIO with a smaller
    # limit would: the instance upsert and the SRS batch are both halved until they pass, and
    # SRS keeps the size that passed, so every record is created once with its MARC.
    records = [loc_records[n % len(loc_records)] for n in range(120)]

    async def body(ils: FolioAdapter, _: Sent) -> tuple[list[str], dict[str, bytes]]:
        ids = await create_all(ils, records, "halved")
        return ids, await ils.get_biblios(ids, correlation_id="read-back")

    (ids, copies), sent = run(folio.url, body, batch_size=120)

    assert len(set(ids)) == 120
    assert set(copies) == set(ids)  # every instance has its MARC in SRS
    # 120 -> 413, 60 -> 413, then four batches of 30 (on main: the first 413 failed them all).
    assert sent[SRS_CREATE] == 2 + 4

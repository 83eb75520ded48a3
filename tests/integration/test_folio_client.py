"""The FOLIO client against the FOLIO emulator over real HTTP: auth, batches, SRS, CQL, items."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pymarc
import pytest
from tests.folio_emulator import CREDENTIALS, TENANT, start_folio

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.emulator.folio.refdata import BOOK, CAN_CIRCULATE, MAIN_LIBRARY
from catalog_sync.ils.errors import ILSAuthError
from catalog_sync.ils.folio.client import (
    HOLDINGS_BATCH,
    ITEM_BATCH,
    FolioClient,
    UpsertStatus,
)
from catalog_sync.ils.folio.mapping import instance_from_marc
from catalog_sync.ils.folio.reference import HOLDINGS_SOURCES, IDENTIFIER_TYPES
from catalog_sync.ils.folio.session import (
    FolioSettings,
    FolioTokenRefused,
    FolioUnknownTenant,
    OkapiSession,
)
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")
CID = "test-folio-client"


def settings(url: str, tenant: str = TENANT, margin: float = 30.0) -> FolioSettings:
    return FolioSettings(
        url, tenant, CREDENTIALS["username"], CREDENTIALS["password"], refresh_margin=margin
    )


def run(url: str, body: Callable[[FolioClient], Awaitable[T]], **kwargs: Any) -> T:
    async def main() -> T:
        async with OkapiSession(settings(url, **kwargs)) as session:
            return await body(FolioClient(session, batch_size=8))

    return asyncio.run(main())


def test_unknown_tenant_fails_at_once_naming_it(folio: ServiceProcess) -> None:
    with pytest.raises(FolioUnknownTenant, match="nosuchlib"):
        run(folio.url, lambda c: c.get_instances([], correlation_id=CID), tenant="nosuchlib")
    assert EmulatorControl(folio.url).counters()["requests"] == 1


def test_expired_token_is_refreshed_once_and_the_call_goes_on(folio: ServiceProcess) -> None:
    control = EmulatorControl(folio.url)

    async def body(client: FolioClient) -> list[dict[str, Any]]:
        control.expire_tokens()
        return await client.get_instances([str(uuid.uuid4())], correlation_id=CID)

    assert run(folio.url, body) == []
    counters = control.counters()
    assert counters["status_401"] == 1 and counters["tokens_issued"] == 2


def test_revoked_session_fails_with_a_clear_error_and_no_retries(folio: ServiceProcess) -> None:
    control = EmulatorControl(folio.url)

    async def body(client: FolioClient) -> None:
        httpx.post(f"{folio.url}/_emulator/tokens/revoke").raise_for_status()
        await client.get_instances([str(uuid.uuid4())], correlation_id=CID)

    with pytest.raises(FolioTokenRefused, match="after one refresh") as caught:
        run(folio.url, body)
    assert isinstance(caught.value, ILSAuthError)
    counters = control.counters()
    # login, the refused call, the refused refresh: nothing more.
    assert counters["requests"] == 3 and counters["status_401"] == 1


def test_token_refused_again_after_its_refresh_is_not_retried(tmp_path: Path) -> None:
    proc = start_folio(tmp_path, "--access-ttl", "0")
    try:
        with pytest.raises(FolioTokenRefused):
            run(proc.url, lambda c: c.get_instances(["x"], correlation_id=CID), margin=0)
        assert EmulatorControl(proc.url).counters()["status_401"] == 2
    finally:
        proc.stop()


def test_token_is_refreshed_before_it_expires(tmp_path: Path) -> None:
    proc = start_folio(tmp_path, "--access-ttl", "5")
    try:

        async def body(client: FolioClient) -> None:
            for _ in range(3):
                await client.get_instances([str(uuid.uuid4())], correlation_id=CID)

        run(proc.url, body, margin=10)  # every token is within the margin: refresh first
        counters = EmulatorControl(proc.url).counters()
        assert counters["tokens_issued"] == 4 and counters.get("auth_failures", 0) == 0
    finally:
        proc.stop()


def test_one_bad_record_does_not_block_its_batch(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    instances = [instance_from_marc(r) for r in loc_records[:20]]

    async def body(client: FolioClient) -> Any:
        first = await client.upsert_instances(instances[:1], correlation_id=CID)
        stored = await client.get_instances([instances[0]["id"]], correlation_id=CID)
        stale = {**stored[0], "_version": 5, "title": "changed elsewhere"}
        bad = {**instances[7], "instanceTypeId": str(uuid.uuid4())}  # no such instance type
        batch = [stale, *instances[1:7], bad, *instances[8:]]
        return first, await client.upsert_instances(batch, correlation_id=CID)

    first, outcomes = run(folio.url, body)
    assert [o.status for o in first] == [UpsertStatus.APPLIED]
    by_status = Counter(o.status for o in outcomes)
    assert by_status == {
        UpsertStatus.APPLIED: 18,
        UpsertStatus.VERSION_CONFLICT: 1,
        UpsertStatus.REJECTED: 1,
    }
    assert outcomes[0].status is UpsertStatus.VERSION_CONFLICT
    assert "optimistic locking" in (outcomes[0].message or "")
    rejected = outcomes[7]
    assert rejected.status is UpsertStatus.REJECTED and "does not exist" in (rejected.message or "")
    writes = Counter(w["record_id"] for w in EmulatorControl(folio.url).writes())
    assert writes == {i["id"]: 1 for i in instances if i["id"] != instances[7]["id"]}


def test_identifier_lookup_sends_several_values_per_query(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    instances = [instance_from_marc(r) for r in loc_records]
    lccns = {
        i["id"]: next(
            x["value"]
            for x in i["identifiers"]
            if x["identifierTypeId"] == IDENTIFIER_TYPES["LCCN"]
        )
        for i in instances
    }
    wanted = [instances[n]["id"] for n in (1, 4, 9)]
    control = EmulatorControl(folio.url)

    async def body(client: FolioClient) -> list[dict[str, Any]]:
        await client.upsert_instances(instances, correlation_id=CID)
        before = control.counters()["requests"]
        found = await client.find_instances_by_identifier(
            "LCCN", [lccns[i] for i in wanted], correlation_id=CID
        )
        assert control.counters()["requests"] - before == 1
        return found

    found = run(folio.url, body)
    assert sorted(i["id"] for i in found) == sorted(wanted)

    async def by_hrid(client: FolioClient) -> list[dict[str, Any]]:
        hrids = [i["hrid"] for i in await client.get_instances(wanted[:2], correlation_id=CID)]
        return await client.find_instances_by_hrid(hrids, correlation_id=CID)

    assert sorted(i["id"] for i in run(folio.url, by_hrid)) == sorted(wanted[:2])


def test_marc_goes_to_srs_linked_to_its_instance_and_reads_back(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    marcs = loc_records[:3]
    instances = [instance_from_marc(r) for r in marcs]

    async def body(client: FolioClient) -> Any:
        await client.upsert_instances(instances, correlation_id=CID)
        stored = await client.get_instances([i["id"] for i in instances], correlation_id=CID)
        stored.sort(key=lambda i: [x["id"] for x in instances].index(i["id"]))
        snapshot = await client.create_snapshot(correlation_id=CID)
        created = await client.save_source_records(
            list(zip(stored, marcs, strict=True)), snapshot, correlation_id=CID
        )
        again = await client.save_source_records(
            [(stored[0], loc_records[5])], snapshot, correlation_id=CID
        )
        read = await client.get_source_record(stored[0]["id"], correlation_id=CID)
        missing = await client.get_source_record(str(uuid.uuid4()), correlation_id=CID)
        return stored, created, again, read, missing

    stored, created, again, read, missing = run(folio.url, body)
    assert all(o.record_id and o.error is None for o in created)
    assert again[0].record_id == created[0].record_id  # an update, not a second record
    assert read is not None and missing is None
    assert read["externalIdsHolder"] == {
        "instanceId": stored[0]["id"],
        "instanceHrid": stored[0]["hrid"],
    }
    parsed = pymarc.parse_json_to_array(json.dumps(read["parsedRecord"]["content"]))[0]
    assert parsed.title == loc_records[5].title


def test_holdings_and_items_are_created_in_batches(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    owner = instance_from_marc(loc_records[0])
    holdings = {
        "id": str(uuid.uuid4()),
        "instanceId": owner["id"],
        "sourceId": HOLDINGS_SOURCES["MARC"],
        "permanentLocationId": MAIN_LIBRARY,
    }
    items = [
        {
            "holdingsRecordId": holdings["id"],
            "barcode": f"3901500000{n:04d}",
            "status": {"name": "Available"},
            "materialTypeId": BOOK,
            "permanentLoanTypeId": CAN_CIRCULATE,
        }
        for n in range(10)
    ]

    async def body(client: FolioClient) -> None:
        await client.upsert_instances([owner], correlation_id=CID)
        for path, key, records in ((HOLDINGS_BATCH, "holdingsRecords", [holdings]),
                                   (ITEM_BATCH, "items", items)):  # fmt: skip
            outcomes = await client.save_batch(path, key, records, upsert=False, correlation_id=CID)
            assert {o.status for o in outcomes} == {UpsertStatus.APPLIED}

    run(folio.url, body)
    kinds = Counter(w["resource"] for w in EmulatorControl(folio.url).writes())
    assert kinds == {"instance": 1, "holdings_record": 1, "item": 10}

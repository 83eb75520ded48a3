"""Many records' holdings and items go to FOLIO in batch requests, each item answered alone
(issue 18): real HTTP to the FOLIO emulator, real LoC records; requests counted off the wire."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pymarc
import pytest
from tests.folio_emulator import Okapi, staff_edit_before
from tests.integration.test_folio_batching import Sent, run
from tests.integration.test_folio_items import item, new_instance, stored

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils.client import IlsItem
from catalog_sync.ils.errors import ILSConflict
from catalog_sync.ils.folio.adapter import FolioAdapter
from catalog_sync.ils.koha_items import DUPLICATE_BARCODE
from catalog_sync.leases import LeaseLost, LeaseManager, holdings_scope
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(120)
HOLDINGS_LOOKUP = ("POST", "/holdings-storage/holdings/retrieve")
ITEM_LOOKUP = ("POST", "/item-storage/items/retrieve")
HOLDINGS_BATCH = ("POST", "/holdings-storage/batch/synchronous")
ITEM_BATCH = ("POST", "/item-storage/batch/synchronous")
RECORDS = 16


def instances(okapi: Okapi, loc_records: list[pymarc.Record], count: int) -> list[str]:
    return [new_instance(okapi, loc_records, n) for n in range(count)]


async def add_all(ils: FolioAdapter, owners: list[str], barcodes: list[str]) -> list[Any]:
    await ils._refs("refs")  # the tenant's locations and types, read once up front
    return list(
        await asyncio.gather(
            *(
                ils.add_item(owner, item(barcode), correlation_id=f"record-{n}")
                for n, (owner, barcode) in enumerate(zip(owners, barcodes, strict=True))
            ),
            return_exceptions=True,
        )
    )


def test_records_items_share_their_lookups_and_writes_and_a_taken_barcode_fails_alone(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owners = instances(okapi, loc_records, RECORDS + 1)
    library, owners = owners[-1], owners[:-1]
    barcodes = [f"3901500000{n:04d}" for n in range(RECORDS)]
    barcodes[5] = "LIBRARY-OWN"  # already an item of another instance in FOLIO

    async def body(ils: FolioAdapter, sent: Sent) -> list[Any]:
        await ils.add_item(library, item("library-own"), correlation_id="library")
        sent.clear()
        return await add_all(ils, owners, barcodes)

    results, sent = run(folio.url, body, batch_size=64)

    refused = results.pop(5)
    assert isinstance(refused, ILSConflict) and refused.reason == DUPLICATE_BARCODE
    assert all(isinstance(r, IlsItem) for r in results), results
    assert [r.biblio_id for r in results] == owners[:5] + owners[6:]
    held = stored(okapi, "/item-storage/items", "items", "cql.allRecords=1")
    assert sorted(i["barcode"] for i in held) == sorted(
        barcodes[:5] + barcodes[6:] + ["library-own"]
    )
    # One look-up of the instances' holdings and one batch making them, for all 16 records;
    # the item batch FOLIO refused as a whole is halved until the taken barcode stands alone
    # (2·log2(16) more), then looked up once to tell a taken barcode from another refusal.
    assert sent[HOLDINGS_LOOKUP] <= 2 and sent[HOLDINGS_BATCH] <= 2
    assert sent[ITEM_BATCH] <= 2 + 2 * 4 and sent[ITEM_LOOKUP] <= 2


def test_lost_answers_to_holdings_and_item_batches_are_found_not_resent(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owners = instances(okapi, loc_records, RECORDS)
    barcodes = [f"3901500001{n:04d}" for n in range(RECORDS)]
    control = EmulatorControl(folio.url)
    to_drop = {HOLDINGS_BATCH, ITEM_BATCH}

    async def body(ils: FolioAdapter, sent: Sent) -> list[Any]:
        armed = False

        async def drop_first_answer(request: httpx.Request) -> None:
            # FOLIO applies the first holdings batch and the first item batch, and their
            # answers are lost on the way back; every other request is answered.
            nonlocal armed
            if armed:
                control.clear_faults()
                armed = False
            if (request.method, request.url.path) in to_drop:
                to_drop.discard((request.method, request.url.path))
                control.set_faults(drop_rate=1.0, drop_after_share=1.0, rate_limit=None)
                armed = True

        ils.session._http.event_hooks["request"].append(drop_first_answer)
        return await add_all(ils, owners, barcodes)

    try:
        results, sent = run(folio.url, body, batch_size=64)
    finally:
        control.clear_faults()

    assert control.counters()["dropped_after_apply"] >= 2 and not to_drop
    assert [r.biblio_id for r in results] == owners
    held = stored(okapi, "/item-storage/items", "items", "cql.allRecords=1")
    assert sorted(i["barcode"] for i in held) == barcodes
    assert sorted(str(r.item_id) for r in results) == sorted(i["id"] for i in held)
    holdings = stored(okapi, "/holdings-storage/holdings", "holdingsRecords", "cql.allRecords=1")
    assert sorted(h["instanceId"] for h in holdings) == sorted(owners)
    # Found by barcode and by id after the lost answers: neither batch was sent twice.
    assert sent[HOLDINGS_BATCH] == 1 and sent[ITEM_BATCH] == 1
    writes = [w["resource"] for w in control.writes()]
    assert writes.count("item") == RECORDS and writes.count("holdings_record") == RECORDS


def test_item_updates_go_in_one_upsert_and_a_staff_change_in_between_is_kept(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owners = instances(okapi, loc_records, RECORDS)
    barcodes = [f"3901500002{n:04d}" for n in range(RECORDS)]

    async def body(ils: FolioAdapter, sent: Sent) -> int:
        made = await add_all(ils, owners, barcodes)
        # A librarian changes one item in FOLIO between our read and our batch write.
        edit = staff_edit_before(okapi, ITEM_BATCH, made[3].item_id, {"volume": "v.2"})
        ils.session._http.event_hooks["request"].append(edit)
        sent.clear()
        await asyncio.gather(
            *(
                ils.update_item(
                    owner, made[n].item_id, item(barcodes[n], callnumber=f"QA{n}"),
                    correlation_id=f"record-{n}",
                )
                for n, owner in enumerate(owners)
            )
        )  # fmt: skip
        return sent[ITEM_BATCH]

    item_batches, sent = run(folio.url, body, batch_size=64)

    held = {i["barcode"]: i for i in stored(okapi, "/item-storage/items", "items",
                                            "cql.allRecords=1")}  # fmt: skip
    assert [held[b]["itemLevelCallNumber"] for b in barcodes] == [f"QA{n}" for n in range(RECORDS)]
    assert held[barcodes[3]]["volume"] == "v.2"  # theirs kept: re-read after the 409
    assert held[barcodes[3]]["_version"] == 3
    assert {held[b]["_version"] for n, b in enumerate(barcodes) if n != 3} == {2}
    # The batch met the 409 as a whole, was halved down to the edited item, which was then
    # read again and sent once more: far fewer requests than one PUT per item.
    assert 2 <= item_batches <= 2 + 2 * 4
    assert not [path for method, path in sent if method == "PUT"]


def test_an_item_whose_lease_is_gone_is_left_out_of_the_batch_and_the_rest_are_written(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record], redis_url: str
) -> None:
    owners = instances(okapi, loc_records, 6)

    async def body(ils: FolioAdapter, _: Sent) -> list[Any]:
        await ils._refs("refs")
        async with LeaseManager.from_url(redis_url) as leases:

            async def one(n: int, owner: str) -> IlsItem:
                async with leases.hold([holdings_scope("ils_folio", owner)]) as lease:
                    if n == 2:  # expired, or taken over by another holder, before the write
                        await leases.redis.delete(*lease.keys)
                    return await ils.add_item(owner, item(f"L-{n}"), correlation_id=f"r{n}")

            return list(
                await asyncio.gather(*(one(n, o) for n, o in enumerate(owners)),
                                     return_exceptions=True)
            )  # fmt: skip

    results, _ = run(folio.url, body, batch_size=64)

    assert isinstance(results.pop(2), LeaseLost)
    assert [r.biblio_id for r in results] == owners[:2] + owners[3:]
    held = stored(okapi, "/item-storage/items", "items", "cql.allRecords=1")
    assert sorted(i["barcode"] for i in held) == ["L-0", "L-1", "L-3", "L-4", "L-5"]
    holdings = stored(okapi, "/holdings-storage/holdings", "holdingsRecords", "cql.allRecords=1")
    assert owners[2] not in {h["instanceId"] for h in holdings}

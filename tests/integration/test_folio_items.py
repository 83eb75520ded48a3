"""FOLIO holdings and items through the ItemsClient the pipeline uses, against the emulator.

Real HTTP to the FOLIO emulator; what FOLIO holds is read back through its own storage APIs.
Item properties go in and come out by the pipeline's (Koha's) names, so a re-read item
compares equal to the one wanted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from tests.folio_emulator import Okapi, settings

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import open_client
from catalog_sync.ils.client import ItemsClient
from catalog_sync.ils.errors import ILSConflict, ILSRejected
from catalog_sync.ils.folio.adapter import FolioAdapter
from catalog_sync.ils.folio.mapping import instance_from_marc
from catalog_sync.ils.koha_items import DUPLICATE_BARCODE
from catalog_sync.pipeline.items import apply_items, plan_items
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(120)
T = TypeVar("T")
CID = "test-folio-items"
MAIN, ANNEX = "KU/CC/DI/M", "KU/CC/DI/A"


def with_folio(url: str, body: Callable[[FolioAdapter], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_client(settings(url)) as ils:
            assert isinstance(ils, FolioAdapter)
            return await body(ils)

    return asyncio.run(main())


def new_instance(okapi: Okapi, loc_records: list[Any], n: int) -> str:
    body = instance_from_marc(loc_records[n])
    assert okapi.post("/instance-storage/instances", body).status_code == 201
    return str(body["id"])


def item(barcode: str, location: str = MAIN, **more: object) -> dict[str, object]:
    return {
        "external_id": barcode,
        "home_library_id": location,
        "item_type_id": "book",
        "loan_type_id": "Can circulate",
        **more,
    }


def stored(okapi: Okapi, path: str, key: str, query: str) -> list[dict[str, Any]]:
    response = okapi.get(path, query=query, limit=100)
    assert response.status_code == 200, response.text
    return list(response.json()[key])


def test_the_folio_adapter_is_an_items_client(folio: ServiceProcess) -> None:
    assert isinstance(open_client(settings(folio.url)), ItemsClient)


def test_items_go_under_a_holdings_per_location_and_read_back_by_the_same_names(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[Any]
) -> None:
    instance = new_instance(okapi, loc_records, 0)
    wanted = [
        item("39015000000001", callnumber="QA76 .A1", copy_number="1", internal_notes="gift"),
        item("39015000000002", copy_number="2"),
        item("39015000000003", ANNEX),
    ]

    async def body(ils: FolioAdapter) -> list[dict[str, object]]:
        for props in wanted:
            await ils.add_item(instance, props, correlation_id=CID)
        return [dict(i.properties) for i in await ils.list_items(instance, correlation_id=CID)]

    read = with_folio(folio.url, body)

    assert sorted(read, key=lambda p: str(p["external_id"])) == [
        {**p, "holding_library_id": p["home_library_id"]} for p in wanted
    ]
    holdings = stored(okapi, "/holdings-storage/holdings", "holdingsRecords",
                      f'instanceId=="{instance}"')  # fmt: skip
    assert len(holdings) == 2  # one per location, made when missing
    items = stored(okapi, "/item-storage/items", "items", "cql.allRecords=1")
    assert [i["status"]["name"] for i in items] == ["Available"] * 3


def test_a_barcode_taken_on_another_instance_is_a_duplicate_conflict(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[Any]
) -> None:
    first, second = new_instance(okapi, loc_records, 0), new_instance(okapi, loc_records, 1)

    async def body(ils: FolioAdapter) -> str | None:
        await ils.add_item(first, item("LIB-39015-a"), correlation_id=CID)
        with pytest.raises(ILSConflict) as taken:
            # FOLIO's barcode index is case-insensitive: another case is the same barcode.
            await ils.add_item(second, item("lib-39015-A"), correlation_id=CID)
        assert taken.value.reason == DUPLICATE_BARCODE
        found = await ils.find_item("LIB-39015-a", correlation_id=CID)
        return found.biblio_id if found else None

    assert with_folio(folio.url, body) == first


def test_unknown_reference_codes_fail_the_item_naming_the_code(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[Any]
) -> None:
    instance = new_instance(okapi, loc_records, 0)

    async def body(ils: FolioAdapter) -> list[str]:
        reasons = []
        for props in (item("1", "NOWHERE"), item("2", item_type_id="vinyl"),
                      {**item("3"), "loan_type_id": "Forever"}):  # fmt: skip
            with pytest.raises(ILSRejected) as refused:
                await ils.add_item(instance, props, correlation_id=CID)
            reasons.append(refused.value.reason)
        return reasons

    assert with_folio(folio.url, body) == [
        "folio_unknown_location", "folio_unknown_material_type", "folio_unknown_loan_type",
    ]  # fmt: skip
    assert stored(okapi, "/item-storage/items", "items", "cql.allRecords=1") == []


def test_pipeline_plan_updates_moves_and_never_creates_twice(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[Any]
) -> None:
    instance = new_instance(okapi, loc_records, 0)
    wanted: list[dict[str, object]] = [item("39015000000011"), item("39015000000012")]

    async def load(ils: FolioAdapter) -> tuple[int, int, int]:
        plan = await plan_items(ils, instance, wanted, correlation_id=CID)
        done = await apply_items(ils, "ils_folio", instance, plan, correlation_id=CID)
        return done["created"], done["updated"], plan.unchanged

    assert with_folio(folio.url, load) == (2, 0, 0)
    assert with_folio(folio.url, load) == (0, 0, 2)  # the same items again: nothing written
    wanted[1] = item("39015000000012", ANNEX, copy_number="2")
    writes = len(EmulatorControl(folio.url).writes())
    assert with_folio(folio.url, load) == (0, 1, 1)
    kinds = [w["resource"] for w in EmulatorControl(folio.url).writes()[writes:]]
    assert kinds == ["holdings_record", "item"]  # the annex holdings made, the item moved
    items = stored(okapi, "/item-storage/items", "items", "cql.allRecords=1")
    assert len(items) == 2 and {i["_version"] for i in items} == {1, 2}


def test_deleting_the_last_item_removes_our_empty_holdings_so_the_instance_can_go(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[Any]
) -> None:
    instance = new_instance(okapi, loc_records, 0)

    async def body(ils: FolioAdapter) -> None:
        made = await ils.add_item(instance, item("39015000000021"), correlation_id=CID)
        await ils.delete_item(made.item_id, correlation_id=CID)
        await ils.delete_biblio(instance, correlation_id=CID)

    with_folio(folio.url, body)
    assert stored(okapi, "/holdings-storage/holdings", "holdingsRecords", "cql.allRecords=1") == []


def test_lost_create_answers_make_each_item_once(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[Any]
) -> None:
    instance = new_instance(okapi, loc_records, 0)
    control = EmulatorControl(folio.url)
    barcodes = [f"390150000001{n:02d}" for n in range(12)]

    async def body(ils: FolioAdapter) -> None:
        await ils.list_items(instance, correlation_id=CID)  # login and reference data first
        control.set_faults(drop_rate=0.3, drop_after_share=1.0, seed=7)
        for barcode in barcodes:
            await ils.add_item(instance, item(barcode), correlation_id=CID)

    try:
        with_folio(folio.url, body)
    finally:
        control.clear_faults()
    assert control.counters().get("dropped_after_apply", 0) > 0
    items = stored(okapi, "/item-storage/items", "items", "cql.allRecords=1")
    assert sorted(i["barcode"] for i in items) == barcodes

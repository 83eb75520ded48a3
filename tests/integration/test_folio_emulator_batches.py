"""The FOLIO emulator's holdings and item batch routes answer as holdings-sync.raml and
item-sync.raml say: 201 without a body, all or nothing, `upsert` defaulting to false, `_version`
conflicts 409 text/plain, the single-record routes' foreign-key and barcode checks as 422
`errors`, 413 for a batch too large and for the -unsafe variants, behind the same fault gate."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.folio_emulator import Okapi
from tests.integration.test_folio_emulator_contract import (
    INV,
    conforms,
    instance,
    is_errors,
    is_text,
)

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils.folio.reference import HOLDINGS_SOURCES
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(60)
HOLDINGS_BATCH = "/holdings-storage/batch/synchronous"
ITEM_BATCH = "/item-storage/batch/synchronous"
UNSAFE_REFUSED = (
    "DB_ALLOW_SUPPRESS_OPTIMISTIC_LOCKING environment variable doesn't allow to disable "
    "optimistic locking"
)


def reference_id(okapi: Okapi, path: str, key: str, query: str) -> str:
    [row] = okapi.get(path, query=query).json()[key]
    return str(row["id"])


def holdings_for(okapi: Okapi, instance_id: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "instanceId": instance_id,
        "sourceId": HOLDINGS_SOURCES["FOLIO"],
        "permanentLocationId": reference_id(okapi, "/locations", "locations", 'code=="KU/CC/DI/M"'),
    }


def item_for(okapi: Okapi, holdings_id: str, barcode: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "holdingsRecordId": holdings_id,
        "barcode": barcode,
        "status": {"name": "Available"},
        "materialTypeId": reference_id(okapi, "/material-types", "mtypes", 'name=="book"'),
        "permanentLoanTypeId": reference_id(
            okapi, "/loan-types", "loantypes", 'name=="Can circulate"'
        ),
    }


def new_owner(okapi: Okapi) -> dict[str, Any]:
    """A holdings record (not yet sent) for an instance just created."""
    owner = instance("Owner")
    assert okapi.post("/instance-storage/instances", owner).status_code == 201
    return holdings_for(okapi, str(owner["id"]))


def keys(response: Any) -> set[str]:
    return {str(p["key"]) for e in is_errors(response) for p in e["parameters"]}


def stored_ids(okapi: Okapi, path: str, key: str) -> set[str]:
    found = okapi.get(path, query="cql.allRecords=1", limit=1000)
    assert found.status_code == 200, found.text
    return {str(r["id"]) for r in found.json()[key]}


def test_holdings_batch_is_all_or_nothing_with_upsert_and_version_checks(
    okapi: Okapi, folio: ServiceProcess
) -> None:
    owner = instance("Owner")
    assert okapi.post("/instance-storage/instances", owner).status_code == 201
    first, second = holdings_for(okapi, str(owner["id"])), holdings_for(okapi, str(owner["id"]))
    created = okapi.post(HOLDINGS_BATCH, {"holdingsRecords": [first, second]})
    assert created.status_code == 201 and created.content == b""
    read = okapi.get(f"/holdings-storage/holdings/{first['id']}").json()
    conforms(read, f"{INV}/holdings-storage/holdingsRecord.json")
    assert read["_version"] == 1 and read["hrid"].startswith("ho")
    before = len(EmulatorControl(folio.url).writes())

    # A foreign key that points nowhere refuses the whole batch: the good record is not kept.
    fresh, orphan = holdings_for(okapi, str(owner["id"])), holdings_for(okapi, str(uuid.uuid4()))
    refused = okapi.post(HOLDINGS_BATCH, {"holdingsRecords": [fresh, orphan]}, upsert="true")
    assert keys(refused) == {"instanceId"}
    # upsert defaults to false: an id FOLIO holds refuses the batch, it is not updated.
    again = okapi.post(HOLDINGS_BATCH, {"holdingsRecords": [fresh, {**read, "callNumber": "X"}]})
    assert keys(again) == {"id"}
    # With upsert, the stored _version must be echoed: a stale one is 409 for the batch.
    stale = okapi.post(
        HOLDINGS_BATCH,
        {"holdingsRecords": [fresh, {**read, "_version": 7, "callNumber": "X"}]},
        upsert="true",
    )
    assert str(first["id"]) in is_text(stale, 409)
    assert stored_ids(okapi, "/holdings-storage/holdings", "holdingsRecords") == {
        first["id"], second["id"],
    }  # fmt: skip
    assert len(EmulatorControl(folio.url).writes()) == before
    updated = okapi.post(
        HOLDINGS_BATCH, {"holdingsRecords": [fresh, {**read, "callNumber": "X"}]}, upsert="true"
    )
    assert updated.status_code == 201
    now = okapi.get(f"/holdings-storage/holdings/{first['id']}").json()
    assert (now["_version"], now["callNumber"]) == (2, "X")
    is_text(okapi.post(HOLDINGS_BATCH, {"holdingsRecords": []}, upsert="maybe"), 400)
    assert keys(okapi.post(HOLDINGS_BATCH, {"holdingsRecords": [{"id": "x"}]})) >= {
        "holdingsRecords[0].id", "holdingsRecords[0].instanceId",
    }  # fmt: skip
    many = [holdings_for(okapi, str(owner["id"])) for _ in range(51)]
    assert is_text(okapi.post(HOLDINGS_BATCH, {"holdingsRecords": many}), 413)


def test_item_batch_checks_holdings_references_and_barcodes_for_the_whole_batch(
    okapi: Okapi, folio: ServiceProcess
) -> None:
    holdings = new_owner(okapi)
    assert okapi.post(HOLDINGS_BATCH, {"holdingsRecords": [holdings]}).status_code == 201
    one, two = item_for(okapi, holdings["id"], "B-1"), item_for(okapi, holdings["id"], "B-2")
    assert okapi.post(ITEM_BATCH, {"items": [one, two]}).status_code == 201
    listed = okapi.get("/item-storage/items", query=f'holdingsRecordId=="{holdings["id"]}"')
    conforms(listed.json(), f"{INV}/item-storage/items.json")
    stored = okapi.get(f"/item-storage/items/{one['id']}").json()
    conforms(stored, f"{INV}/item-storage/item.json")
    assert stored["_version"] == 1 and stored["hrid"].startswith("it")
    writes = len(EmulatorControl(folio.url).writes())

    fresh = item_for(okapi, holdings["id"], "B-3")
    # The barcode index is unique and case-insensitive, against stored items and within the
    # batch alike; a holdings record or material type that does not exist is a foreign key.
    for bad in (
        {**item_for(okapi, holdings["id"], "b-1")},
        {**item_for(okapi, holdings["id"], "B-3")},
        {**item_for(okapi, str(uuid.uuid4()), "B-4")},
        {**item_for(okapi, holdings["id"], "B-5"), "materialTypeId": str(uuid.uuid4())},
    ):
        refused = okapi.post(ITEM_BATCH, {"items": [fresh, bad]}, upsert="true")
        assert len(keys(refused)) == 1, refused.text
    unversioned = {k: v for k, v in stored.items() if k != "_version"}
    stale = okapi.post(ITEM_BATCH, {"items": [fresh, unversioned]}, upsert="true")
    assert "optimistic locking" in is_text(stale, 409)  # no _version is not the stored one
    assert stored_ids(okapi, "/item-storage/items", "items") == {one["id"], two["id"]}
    assert len(EmulatorControl(folio.url).writes()) == writes

    upsert = okapi.post(
        ITEM_BATCH, {"items": [fresh, {**stored, "_version": 1, "copyNumber": "2"}]}, upsert="true"
    )
    assert upsert.status_code == 201
    assert okapi.get(f"/item-storage/items/{one['id']}").json()["_version"] == 2
    assert [w["resource"] for w in EmulatorControl(folio.url).writes()[writes:]] == ["item"] * 2


def test_unsafe_batches_are_refused_as_folio_refuses_them_without_the_env_variable(
    okapi: Okapi, folio: ServiceProcess
) -> None:
    holdings = new_owner(okapi)
    for path, body in (
        ("/holdings-storage/batch/synchronous-unsafe", {"holdingsRecords": [holdings]}),
        ("/item-storage/batch/synchronous-unsafe", {"items": [item_for(okapi, holdings["id"],
                                                                        "U-1")]}),
        ("/instance-storage/batch/synchronous-unsafe", {"instances": [instance("Other")]}),
    ):  # fmt: skip
        assert is_text(okapi.post(path, body), 413) == UNSAFE_REFUSED
    assert keys(okapi.post("/item-storage/batch/synchronous-unsafe", {"items": [{}]})) >= {
        "items[0].holdingsRecordId"
    }
    assert stored_ids(okapi, "/holdings-storage/holdings", "holdingsRecords") == set()


def test_item_batches_pass_the_same_token_rate_limit_and_fault_gate(
    okapi: Okapi, folio: ServiceProcess
) -> None:
    missing = okapi.client.post(
        ITEM_BATCH, json={"items": []}, headers={"X-Okapi-Tenant": okapi.headers["X-Okapi-Tenant"]}
    )
    assert is_text(missing, 403).endswith("inventory-storage.items.batch.post")
    holdings = new_owner(okapi)
    control = EmulatorControl(folio.url)
    control.set_faults(error_rate=1.0, error_statuses=[503], rate_limit=None)
    try:
        failed = okapi.post(HOLDINGS_BATCH, {"holdingsRecords": [holdings]})
    finally:
        control.clear_faults()
    assert is_text(failed, 503) and control.counters()["injected_errors"] == 1
    assert stored_ids(okapi, "/holdings-storage/holdings", "holdingsRecords") == set()
